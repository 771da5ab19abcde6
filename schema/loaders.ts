import DataLoader from 'dataloader';
import type { GraphQLResolveInfo } from 'graphql';
import type { Context } from '../server/http/context.js';
import {
  type DistributionRule,
  findDistributionRulesByIds,
} from '../server/settings/distribution-rules.js';
import {
  type CustomField,
  listCustomFields,
  type UserField,
  userFieldsOf,
} from '../server/settings/fields.js';
import { findTrainingGroupsByIds, type TrainingGroup } from '../server/settings/training-groups.js';

/**
 * What resolvers of one result load, each a DataLoader: every row, cell and count of a page
 * asks for its field, group or rule, and the loader answers them all with one statement (by
 * company, or by the ids the page names), so a page runs the same statements at 1 row as at
 * 100, with 3 columns or 30.
 */
export interface Loaders {
  /** The company's custom fields, in creation order; keyed by company id. */
  customFields: DataLoader<string, CustomField[]>;
  /** The company's user fields (built-ins, then custom fields); keyed by company id. */
  userFields: DataLoader<string, UserField[]>;
  /** Training groups of the caller's company by id; null for an id it has none of. */
  trainingGroups: DataLoader<string, TrainingGroup | null>;
  /** Distribution rules of the caller's company by id; null for an id it has none of. */
  distributionRules: DataLoader<string, DistributionRule | null>;
}

function createLoaders(ctx: Context): Loaders {
  const companyId = ctx.auth.companyId;
  const byId = <Row extends { id: string }>(ids: readonly string[], rows: Row[]) => {
    const found = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => found.get(id) ?? null);
  };
  const customFields = new DataLoader<string, CustomField[]>((companyIds) =>
    Promise.all(companyIds.map((id) => listCustomFields(ctx.db, id))),
  );
  return {
    customFields,
    userFields: new DataLoader((companyIds) =>
      Promise.all(companyIds.map(async (id) => userFieldsOf(await customFields.load(id)))),
    ),
    trainingGroups: new DataLoader(async (ids) =>
      byId(ids, await findTrainingGroupsByIds(ctx.db, companyId, ids)),
    ),
    distributionRules: new DataLoader(async (ids) =>
      byId(ids, await findDistributionRulesByIds(ctx.db, companyId, ids)),
    ),
  };
}

const loadersByContext = new WeakMap<Context, WeakMap<object, Loaders>>();

/**
 * The loaders of one result: of the request, or for a subscription of the event being
 * answered (graphql-js executes each event with the event as root value). A subscription
 * lives as long as its import, and each event must show the fields and groups as they are
 * then: a custom field added at CUSTOM_FIELDS must be found by the next event's columns.
 */
export function loaders(ctx: Context, info: GraphQLResolveInfo): Loaders {
  let scopes = loadersByContext.get(ctx);
  if (!scopes) {
    scopes = new WeakMap();
    loadersByContext.set(ctx, scopes);
  }
  const root: unknown = info.rootValue;
  const scope =
    info.operation.operation === 'subscription' && typeof root === 'object' && root ? root : ctx;
  let found = scopes.get(scope);
  if (!found) {
    found = createLoaders(ctx);
    scopes.set(scope, found);
  }
  return found;
}

/** The caller's company's user fields, loaded once for the result. */
export function userFields(ctx: Context, info: GraphQLResolveInfo): Promise<UserField[]> {
  return loaders(ctx, info).userFields.load(ctx.auth.companyId);
}

/** The caller's company's custom fields, loaded once for the result. */
export function customFields(ctx: Context, info: GraphQLResolveInfo): Promise<CustomField[]> {
  return loaders(ctx, info).customFields.load(ctx.auth.companyId);
}
