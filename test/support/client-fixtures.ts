import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateDistributionRuleDocument,
  CreateTrainingGroupDocument,
  createMusterClient,
} from '../../client/index.js';
import { users } from '../../drizzle/tables.js';
import type { TestApp, TestCompany } from './app.js';

/** The file the client tests import: what each row becomes is noted beside it. */
export const CLIENT_TEST_FILE = [
  ['Email', 'userName', 'reference', 'Department'],
  ['ann@sales.example', 'Ann', 'R1', 'North'], // CREATE → Sales
  ['bob@example.com', 'Bob', 'R2', 'South'], // CREATE, no rule matches
  ['OLD@example.com', 'Old Renamed', 'R-OLD', null], // UPDATE
  ['not-an-email', 'Nobody', 'R4', null], // INVALID_EMAIL: skipped
];

/**
 * A new company, set up through the client: a Sales group given by the rule "email ends with
 * @sales.example", and one existing user, old@example.com.
 */
export async function companyWithSalesRule(t: TestApp, graphqlUrl: string): Promise<TestCompany> {
  const company = await t.createTestCompany();
  const client = createMusterClient({ url: graphqlUrl, token: company.token });
  const group = await client
    .mutation(CreateTrainingGroupDocument, { input: { name: 'Sales' } })
    .toPromise();
  const created = group.data?.createTrainingGroup;
  if (created?.__typename !== 'TrainingGroup') throw new Error('no group');
  await client
    .mutation(CreateDistributionRuleDocument, {
      input: {
        fieldKey: 'email',
        operator: 'ENDS_WITH',
        value: '@sales.example',
        trainingGroupId: created.id,
      },
    })
    .toPromise();
  await t.db.insert(users).values({
    companyId: company.companyId,
    email: 'old@example.com',
    userName: 'Old',
    reference: 'R-OLD',
  });
  return company;
}

export interface CommandRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end, asynchronously (the test server shares this process), without
 * the caller's MUSTER_URL and MUSTER_TOKEN; never throws for a non-zero exit code.
 */
export function runCommand(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeout?: number },
): Promise<CommandRun> {
  const env = { ...process.env };
  delete env.MUSTER_URL;
  delete env.MUSTER_TOKEN;
  Object.assign(env, options.env);
  return new Promise((done) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env, timeout: options.timeout ?? 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** The repository, and the tsx that runs the CLI from its TypeScript sources. */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TSX = join(REPOSITORY_ROOT, 'node_modules/.bin/tsx');

/** `muster …` from the TypeScript sources (client/cli.ts), with `env` (MUSTER_URL, …). */
export function runMusterCli(
  args: string[],
  env: Record<string, string>,
  options: { timeout?: number } = {},
): Promise<CommandRun> {
  return runCommand(TSX, ['client/cli.ts', ...args], { cwd: REPOSITORY_ROOT, env, ...options });
}
