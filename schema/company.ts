import { eq } from 'drizzle-orm';
import { companies } from '../drizzle/tables.js';
import type { TokenRole } from '../server/infrastructure/auth.js';
import { builder } from './builder.js';

interface ViewerShape {
  companyId: string;
  role: TokenRole;
}

export const TokenRoleEnum = builder.enumType('TokenRole', {
  description: 'What an API token may do.',
  values: {
    ADMIN: { description: 'Read and change everything of its company, and run imports.' },
    VIEWER: { description: 'Read only: every mutation is refused.' },
  },
});

const Company = builder.objectRef<{ id: string; name: string }>('Company').implement({
  description: 'The company an API token belongs to; all data is scoped to it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The company ID (as printed by the admin CLI).' }),
    name: t.exposeString('name', { description: 'The company name.' }),
  }),
});

const Viewer = builder.objectRef<ViewerShape>('Viewer').implement({
  description: 'The caller: the company of the token and what the token may do.',
  fields: (t) => ({
    role: t.field({
      type: TokenRoleEnum,
      description: 'The role of the token.',
      resolve: (v) => v.role,
    }),
    company: t.field({
      type: Company,
      description: 'The company of the token.',
      resolve: async (viewer, _args, ctx) => {
        const [company] = await ctx.db
          .select({ id: companies.id, name: companies.name })
          .from(companies)
          .where(eq(companies.id, viewer.companyId));
        if (!company) throw new Error('token of a company that no longer exists');
        return company;
      },
    }),
  }),
});

builder.queryType({
  description: 'Reads. Every query is scoped to the company of the bearer token.',
  fields: (t) => ({
    viewer: t.field({
      type: Viewer,
      description: 'The token making the request: its company and role.',
      resolve: (_root, _args, ctx) => ({ companyId: ctx.auth.companyId, role: ctx.auth.role }),
    }),
  }),
});

builder.mutationType({
  description: 'Changes. Every mutation needs an ADMIN token and is scoped to its company.',
  authScopes: { admin: true },
  fields: () => ({}),
});
