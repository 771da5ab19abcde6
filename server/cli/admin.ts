import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { asc, eq } from 'drizzle-orm';
import { createDatabase } from '../../drizzle/client.js';
import { apiTokens, companies } from '../../drizzle/tables.js';
import { createCompany, createToken, revokeToken, type TokenRole } from '../infrastructure/auth.js';
import { loadConfig } from '../infrastructure/config.js';
import { lockDataDirectory } from '../infrastructure/data-dir-lock.js';

const usage = `Usage: npm run admin -- <command>

Commands:
  create-company "<name>"                        new company and its ADMIN token
  create-token <companyId> [--role ADMIN|VIEWER] [--label "<text>"]
                                                 another token for a company (default VIEWER)
  revoke-token <tokenId>                         every server refuses it within moments
  list-tokens <companyId>                        the company's tokens (never the secrets)

Each command prints one JSON line. It uses DATABASE_URL when set, else the embedded
database in DATA_DIR (which must not be in use by a running server).`;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class UsageError extends Error {}

function requireId(value: string | undefined, what: string): string {
  if (!value || !uuidPattern.test(value)) throw new UsageError(`${what} must be a UUID.`);
  return value;
}

function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: 'string', default: 'VIEWER' },
      label: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

async function main(argv: string[]): Promise<unknown> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { positionals, values } = parsed;
  const [command, argument] = positionals;
  if (values.help || !command) throw new UsageError('');
  const role = values.role?.toUpperCase();
  if (role !== 'ADMIN' && role !== 'VIEWER')
    throw new UsageError('--role must be ADMIN or VIEWER.');
  if (command === 'create-company' && !argument?.trim()) {
    throw new UsageError('create-company needs the company name.');
  }
  if (!['create-company', 'create-token', 'revoke-token', 'list-tokens'].includes(command)) {
    throw new UsageError(`Unknown command ${JSON.stringify(command)}.`);
  }

  const config = loadConfig();
  // Held while the command runs, so a server cannot open the same PGlite directory meanwhile.
  const releaseDataDir = config.DATABASE_URL
    ? () => {}
    : lockDataDirectory(resolve(config.DATA_DIR));
  const database = await createDatabase(
    config.DATABASE_URL
      ? { url: config.DATABASE_URL }
      : { dataDir: resolve(config.DATA_DIR, 'pglite') },
  );
  try {
    await database.migrate();
    const { db } = database;
    switch (command) {
      case 'create-company': {
        const created = await createCompany(db, (argument as string).trim());
        return { companyId: created.companyId, token: created.token };
      }
      case 'create-token': {
        const companyId = requireId(argument, 'The company ID');
        const [company] = await db.select().from(companies).where(eq(companies.id, companyId));
        if (!company) throw new UsageError(`No company with ID ${companyId}.`);
        const created = await createToken(db, {
          companyId,
          role: role as TokenRole,
          label: values.label,
        });
        return { tokenId: created.id, role, token: created.token };
      }
      case 'revoke-token': {
        const tokenId = requireId(argument, 'The token ID');
        if (!(await revokeToken(db, tokenId))) {
          throw new UsageError(`No live token with ID ${tokenId}.`);
        }
        return { tokenId, revoked: true };
      }
      default: {
        const companyId = requireId(argument, 'The company ID');
        const tokens = await db
          .select({
            tokenId: apiTokens.id,
            role: apiTokens.role,
            label: apiTokens.label,
            createdAt: apiTokens.createdAt,
            revokedAt: apiTokens.revokedAt,
          })
          .from(apiTokens)
          .where(eq(apiTokens.companyId, companyId))
          .orderBy(asc(apiTokens.createdAt));
        return { companyId, tokens };
      }
    }
  } finally {
    await database.close();
    releaseDataDir();
  }
}

main(process.argv.slice(2)).then(
  (result) => {
    console.log(JSON.stringify(result));
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      if (error.message) console.error(`Error: ${error.message}\n`);
      console.error(usage);
      process.exit(2);
    }
    console.error(`Error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
