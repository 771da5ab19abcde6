import { decodeGlobalID } from '@pothos/plugin-relay';
import fc from 'fast-check';
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ContinueImportDocument,
  CreateDistributionRuleDocument,
  CreateTrainingGroupDocument,
  DeleteDistributionRuleDocument,
  DeleteTrainingGroupDocument,
  ImportGroupAssignmentDocument,
  ImportSessionDocument,
  type ImportStage,
  ReorderDistributionRulesDocument,
  type RuleOperator,
  StartImportDocument,
  UpdateDistributionRuleDocument,
  UsersDocument,
} from '../../client/gql/graphql.js';
import { users } from '../../drizzle/tables.js';
import { createTestApp, type TestApp, type TestCompany } from '../support/app.js';
import { uploadFile } from '../support/http.js';
import { workbookBytes } from '../support/workbooks.js';

/**
 * An admin edits the distribution rules (and deletes groups, which changes users) at stage 5
 * while the preview is recomputed and while the import commits. Whatever the interleaving:
 * once idle, the preview is what the rules and users say now, and the commit assigns what they
 * say at one moment between the commit's request and its end. The same file runs on PGlite
 * and, with DATABASE_URL, on Postgres.
 */

let t: TestApp;
let baseUrl: string;
beforeAll(async () => {
  t = await createTestApp();
  baseUrl = await t.listen();
});
afterAll(async () => {
  await t.close();
});

const RULE_GROUPS = ['Alpha', 'Beta', 'Gamma'] as const;
/** Groups of existing users only (no rule names them), so deleting one changes users. */
const USER_GROUPS = ['Old1', 'Old2'] as const;
type GroupName = (typeof RULE_GROUPS)[number] | (typeof USER_GROUPS)[number];

const EXISTING: { email: string; userName: string; reference: string; group: GroupName | null }[] =
  [
    { email: 'ann@acme.test', userName: 'Ann', reference: 'R-ANN', group: 'Old1' },
    { email: 'bob@acme.test', userName: 'Bob', reference: 'R-BOB', group: null },
    { email: 'cid@other.test', userName: 'Cid', reference: 'R-CID', group: 'Alpha' },
    { email: 'dan@sales.acme.test', userName: 'Dan', reference: 'R-DAN', group: 'Old2' },
    { email: 'zed@other.test', userName: 'Zed', reference: 'R-ZED', group: 'Old1' },
  ];

/** The file: header, then rows 2..; row 5 is invalid (no email). */
const FILE_ROWS: [string | null, string, string][] = [
  ['ann@acme.test', 'Ann', 'R-ANN'], // 2 UNCHANGED
  ['BOB@acme.test', 'Bobby', 'R-BOB'], // 3 UPDATE
  ['cid@other.test', 'Cid', 'R-CID'], // 4 UNCHANGED
  [null, 'Nobody', 'R-NONE'], // 5 invalid
  ['dan@sales.acme.test', 'Dan', 'R-DAN2'], // 6 UPDATE
  ['eve@acme.test', 'Eve', 'R-EVE'], // 7 CREATE
  ['fay@other.test', 'Fay', 'R-FAY'], // 8 CREATE
  ['gus@sales.acme.test', 'Gus', 'R-GUS'], // 9 CREATE
];

interface RuleModel {
  id: string;
  operator: RuleOperator;
  value: string;
  group: GroupName;
}

/** Everything a preview is computed from: the rules in order, and each user's group. */
interface World {
  rules: RuleModel[];
  userGroups: Map<string, GroupName | null>;
}

function matches(operator: RuleOperator, wanted: string, value: string): boolean {
  const subject = value.toLowerCase();
  const target = wanted.toLowerCase();
  switch (operator) {
    case 'EQUALS':
      return subject === target;
    case 'NOT_EQUALS':
      return subject !== target;
    case 'CONTAINS':
      return subject.includes(target);
    case 'STARTS_WITH':
      return subject.startsWith(target);
    case 'ENDS_WITH':
      return subject.endsWith(target);
  }
}

/** The reference: the first matching rule's group; an existing user keeps a group they have. */
function expectedGroups(world: World): Map<string, GroupName | null> {
  const groups = new Map<string, GroupName | null>();
  for (const [email] of FILE_ROWS) {
    if (email === null) continue;
    const key = email.toLowerCase();
    const ruleGroup = world.rules.find((rule) => matches(rule.operator, rule.value, email))?.group;
    const existing = world.userGroups.get(key);
    groups.set(key, existing ?? ruleGroup ?? null);
  }
  return groups;
}

function expectedPreview(world: World) {
  const groups = expectedGroups(world);
  const rows = FILE_ROWS.map(([email, userName, reference], index) => {
    const rowNumber = index + 2;
    if (email === null) return { rowNumber, action: 'SKIP', group: null };
    const user = EXISTING.find((candidate) => candidate.email === email.toLowerCase());
    const action = !user
      ? 'CREATE'
      : user.userName === userName && user.reference === reference
        ? 'UNCHANGED'
        : 'UPDATE';
    return { rowNumber, action, group: groups.get(email.toLowerCase()) ?? null };
  });
  const counts = new Map<string | null, number>();
  for (const group of groups.values()) counts.set(group, (counts.get(group) ?? 0) + 1);
  const assignment = [...counts].map(([group, userCount]) => ({ group, userCount }));
  return { rows, assignment: sortAssignment(assignment) };
}

/**
 * Every user of the company after a commit of `world`, by email, once the groups in
 * `existing` are all that is left (a group deleted after the commit takes its users' with it).
 */
function expectedUsers(world: World, existing: Set<GroupName>): Record<string, GroupName | null> {
  const result: Record<string, GroupName | null> = {};
  for (const [email, group] of world.userGroups) result[email] = group;
  for (const [email, group] of expectedGroups(world)) result[email] = group;
  for (const [email, group] of Object.entries(result)) {
    if (group && !existing.has(group)) result[email] = null;
  }
  return result;
}

function sortAssignment(entries: { group: string | null; userCount: number }[]) {
  return [...entries].sort((a, b) => String(a.group).localeCompare(String(b.group)));
}

type Edit =
  | { kind: 'create'; operator: RuleOperator; value: string; group: number }
  | { kind: 'update'; rule: number; operator: RuleOperator; value: string; group: number }
  | { kind: 'delete'; rule: number }
  | { kind: 'reorder'; from: number; to: number }
  /** Two reorders back to back, the second undoing the first (rules as they were). */
  | { kind: 'reorderAndBack'; from: number; to: number }
  | { kind: 'deleteUserGroup'; group: number }
  | { kind: 'pause'; ms: number };

const operatorArb = fc.constantFrom<RuleOperator>('ENDS_WITH', 'CONTAINS', 'STARTS_WITH', 'EQUALS');
const valueArb = fc.constantFrom('@acme.test', 'acme', 'sales', 'a', '@other.test', 'bob', 'e');
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      operator: operatorArb,
      value: valueArb,
      group: fc.nat(2),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      rule: fc.nat(9),
      operator: operatorArb,
      value: valueArb,
      group: fc.nat(2),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), rule: fc.nat(9) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('reorder' as const), from: fc.nat(9), to: fc.nat(9) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('reorderAndBack' as const),
      from: fc.nat(9),
      to: fc.nat(9),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('deleteUserGroup' as const), group: fc.nat(1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('pause' as const),
      ms: fc.integer({ min: 1, max: 15 }),
    }),
  },
);

/** One company's run: its tokens, group ids by name, and the world as edits leave it. */
class Run {
  /** The groups that exist now. */
  readonly groupIds = new Map<GroupName, string>();
  /** Every group the run created, deleted or not, to name the ids the API returns. */
  readonly names = new Map<string, GroupName>();
  #world: World = { rules: [], userGroups: new Map() };
  /**
   * Every world an answered mutation left, in order: an edit of two mutations (a reorder and
   * its undo) leaves two, and a commit may read the rules between them.
   */
  readonly history: World[] = [];
  constructor(readonly company: TestCompany) {}

  get world(): World {
    return this.#world;
  }

  set world(world: World) {
    this.#world = world;
    this.history.push(world);
  }

  groupName(id: string | undefined | null): GroupName | null {
    if (!id) return null;
    const name = this.names.get(id);
    if (!name) throw new Error(`unknown group ${id}`);
    return name;
  }

  async createRule(operator: RuleOperator, value: string, group: GroupName) {
    const groupId = this.groupIds.get(group) as string;
    const result = await t.send(this.company.token, CreateDistributionRuleDocument, {
      input: { fieldKey: 'email', operator, value, trainingGroupId: groupId },
    });
    const rule = result.data?.createDistributionRule;
    if (rule?.__typename !== 'DistributionRule') throw new Error(JSON.stringify(result));
    this.world = {
      ...this.world,
      rules: [...this.world.rules, { id: rule.id, operator, value, group }],
    };
  }

  /** Applies one edit through the API, as an admin would, and to the model once answered. */
  async apply(edit: Edit): Promise<void> {
    const rules = this.world.rules;
    switch (edit.kind) {
      case 'pause':
        await new Promise((resolve) => setTimeout(resolve, edit.ms));
        return;
      case 'create':
        return this.createRule(edit.operator, edit.value, RULE_GROUPS[edit.group] as GroupName);
      case 'update': {
        const rule = rules[edit.rule % Math.max(1, rules.length)];
        if (!rule) return;
        const group = RULE_GROUPS[edit.group] as GroupName;
        const result = await t.send(this.company.token, UpdateDistributionRuleDocument, {
          input: {
            id: rule.id,
            operator: edit.operator,
            value: edit.value,
            trainingGroupId: this.groupIds.get(group) as string,
          },
        });
        if (result.data?.updateDistributionRule.__typename !== 'DistributionRule') {
          throw new Error(JSON.stringify(result));
        }
        this.world = {
          ...this.world,
          rules: rules.map((candidate) =>
            candidate.id === rule.id
              ? { ...candidate, operator: edit.operator, value: edit.value, group }
              : candidate,
          ),
        };
        return;
      }
      case 'delete': {
        const rule = rules[edit.rule % Math.max(1, rules.length)];
        if (!rule) return;
        const result = await t.send(this.company.token, DeleteDistributionRuleDocument, {
          input: { id: rule.id },
        });
        if (result.data?.deleteDistributionRule.__typename !== 'DistributionRule') {
          throw new Error(JSON.stringify(result));
        }
        this.world = { ...this.world, rules: rules.filter((candidate) => candidate !== rule) };
        return;
      }
      case 'reorder': {
        if (rules.length < 2) return;
        const order = [...rules];
        const [moved] = order.splice(edit.from % order.length, 1);
        order.splice(edit.to % (order.length + 1), 0, moved as RuleModel);
        return this.reorder(order);
      }
      case 'reorderAndBack': {
        if (rules.length < 2) return;
        await this.apply({ ...edit, kind: 'reorder' });
        return this.reorder(rules);
      }
      case 'deleteUserGroup': {
        const group = USER_GROUPS[edit.group] as GroupName;
        const id = this.groupIds.get(group);
        if (!id) return;
        const result = await t.send(this.company.token, DeleteTrainingGroupDocument, {
          input: { id },
        });
        if (result.data?.deleteTrainingGroup.__typename !== 'TrainingGroup') {
          throw new Error(JSON.stringify(result));
        }
        this.groupIds.delete(group);
        const userGroups = new Map(this.world.userGroups);
        for (const [email, userGroup] of userGroups) {
          if (userGroup === group) userGroups.set(email, null);
        }
        this.world = { ...this.world, userGroups };
        return;
      }
    }
  }

  async reorder(order: RuleModel[]): Promise<void> {
    const result = await t.send(this.company.token, ReorderDistributionRulesDocument, {
      input: { ruleIds: order.map((rule) => rule.id) },
    });
    if (result.data?.reorderDistributionRules.__typename !== 'DistributionRuleList') {
      throw new Error(JSON.stringify(result));
    }
    this.world = { ...this.world, rules: order };
  }

  async session(id: string) {
    const result = await t.send(this.company.token, ImportSessionDocument, { id });
    const session = result.data?.importSession;
    if (!session) throw new Error(JSON.stringify(result));
    return session;
  }

  /** Polls until the session is idle (the admin's page waits for `busy` to go false). */
  async idle(id: string) {
    for (;;) {
      const session = await this.session(id);
      if (!session.busy) return session;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async continueFrom(id: string, stage: ImportStage) {
    const result = await t.send(this.company.token, ContinueImportDocument, {
      input: { sessionId: id, stage },
    });
    if (result.data?.continueImport.__typename !== 'ImportSession') {
      throw new Error(JSON.stringify(result));
    }
  }

  async preview(id: string) {
    // Not the client's ImportRows: its fragments go one level deeper than the server allows.
    const rows = await t.request<{
      importSession: {
        rows: {
          edges: {
            node: { rowNumber: number; action: string; trainingGroup: { id: string } | null };
          }[];
        };
      } | null;
    }>(
      this.company.token,
      `query($id: ID!) { importSession(id: $id) { rows(first: 50) { edges { node {
        rowNumber action trainingGroup { id } } } } } }`,
      { id },
    );
    if (rows.errors) throw new Error(JSON.stringify(rows.errors));
    const assignment = await t.send(this.company.token, ImportGroupAssignmentDocument, { id });
    return {
      rows: (rows.data?.importSession?.rows.edges ?? []).map(({ node }) => ({
        rowNumber: node.rowNumber,
        action: node.action,
        group: this.groupName(node.trainingGroup?.id),
      })),
      assignment: sortAssignment(
        (assignment.data?.importSession?.groupAssignment ?? []).map((entry) => ({
          group: this.groupName(entry.trainingGroup?.id),
          userCount: entry.userCount,
        })),
      ),
    };
  }

  async users(): Promise<Record<string, GroupName | null>> {
    const result = await t.send(this.company.token, UsersDocument, { first: 50 });
    return Object.fromEntries(
      (result.data?.users.edges ?? []).map(({ node }) => [
        node.email.toLowerCase(),
        this.groupName(node.trainingGroup?.id),
      ]),
    );
  }
}

/** A company with groups, two rules and users, and an import of FILE_ROWS idle at stage 5. */
async function sessionAtGroupAssignment(): Promise<{ run: Run; id: string }> {
  const run = new Run(await t.createTestCompany());
  for (const name of [...RULE_GROUPS, ...USER_GROUPS]) {
    const result = await t.send(run.company.token, CreateTrainingGroupDocument, {
      input: { name },
    });
    const group = result.data?.createTrainingGroup;
    if (group?.__typename !== 'TrainingGroup') throw new Error(JSON.stringify(result));
    run.groupIds.set(name, group.id);
    run.names.set(group.id, name);
  }
  await run.createRule('ENDS_WITH', '@other.test', 'Beta');
  await run.createRule('CONTAINS', 'sales', 'Gamma');
  await t.db.insert(users).values(
    EXISTING.map((user) => ({
      companyId: run.company.companyId,
      email: user.email,
      userName: user.userName,
      reference: user.reference,
      trainingGroupId: user.group
        ? decodeGlobalID(run.groupIds.get(user.group) as string).id
        : null,
    })),
  );
  run.world = {
    ...run.world,
    userGroups: new Map(EXISTING.map((user) => [user.email, user.group])),
  };
  const { body } = await uploadFile(
    baseUrl,
    run.company.token,
    print(StartImportDocument),
    { input: { file: null } },
    {
      name: 'users.xlsx',
      content: await workbookBytes([['Email', 'userName', 'reference'], ...FILE_ROWS]),
    },
  );
  const id = body.data.startImport.id as string;
  await run.idle(id);
  await run.continueFrom(id, 'VALIDATION');
  await run.idle(id);
  await run.continueFrom(id, 'REVIEW');
  expect(await run.idle(id)).toMatchObject({ stage: 'GROUP_ASSIGNMENT', busy: false });
  return { run, id };
}

/** fast-check's settings: few runs, and no shrinking, whose replays would share the session. */
const RUNS = { endOnFailure: true } as const;

describe('rule and user changes at stage 5, beside recomputes and the commit', () => {
  it('leave the idle preview as a computation from scratch says', {
    timeout: 180_000,
  }, async () => {
    // One session for every run (its read is the slow part): each run's edits start from
    // where the last run left the rules and users.
    const { run, id } = await sessionAtGroupAssignment();
    await fc.assert(
      fc.asyncProperty(fc.array(editArb, { minLength: 1, maxLength: 8 }), async (edits) => {
        for (const edit of edits) await run.apply(edit);
        await run.idle(id);
        expect(await run.preview(id)).toEqual(expectedPreview(run.world));
      }),
      { ...RUNS, numRuns: 20 },
    );
  });

  it('commit what the rules and users say at one moment after the commit was asked for', {
    timeout: 180_000,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(editArb, { minLength: 1, maxLength: 6 }),
        fc.array(editArb, { minLength: 1, maxLength: 6 }),
        async (beforeCommit, duringCommit) => {
          const { run, id } = await sessionAtGroupAssignment();
          for (const edit of beforeCommit) await run.apply(edit);
          // Asked for once idle (a busy session refuses it); the edits go on, back to back.
          await run.idle(id);
          const before = run.history.length - 1;
          await run.continueFrom(id, 'GROUP_ASSIGNMENT');
          for (const edit of duringCommit) await run.apply(edit);
          const worlds = run.history.slice(before);
          const ended = await run.idle(id);
          expect(ended.stage).toBe('COMPLETED');
          const committed = await run.users();
          const existing = new Set(run.groupIds.keys());
          expect(worlds.map((world) => expectedUsers(world, existing))).toContainEqual(committed);
        },
      ),
      { ...RUNS, numRuns: 3 },
    );
  });
});
