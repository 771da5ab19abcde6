import { defineRelations } from 'drizzle-orm';
import * as tables from './tables.js';

export const relations = defineRelations(tables, (r) => ({
  companies: {
    tokens: r.many.apiTokens(),
    users: r.many.users(),
    customFields: r.many.customFields(),
    trainingGroups: r.many.trainingGroups(),
    distributionRules: r.many.distributionRules(),
    importSessions: r.many.importSessions(),
  },
  apiTokens: {
    company: r.one.companies({ from: r.apiTokens.companyId, to: r.companies.id, optional: false }),
  },
  users: {
    company: r.one.companies({ from: r.users.companyId, to: r.companies.id, optional: false }),
    trainingGroup: r.one.trainingGroups({
      from: r.users.trainingGroupId,
      to: r.trainingGroups.id,
    }),
  },
  customFields: {
    company: r.one.companies({
      from: r.customFields.companyId,
      to: r.companies.id,
      optional: false,
    }),
  },
  trainingGroups: {
    company: r.one.companies({
      from: r.trainingGroups.companyId,
      to: r.companies.id,
      optional: false,
    }),
    users: r.many.users(),
    distributionRules: r.many.distributionRules(),
  },
  distributionRules: {
    company: r.one.companies({
      from: r.distributionRules.companyId,
      to: r.companies.id,
      optional: false,
    }),
    trainingGroup: r.one.trainingGroups({
      from: r.distributionRules.trainingGroupId,
      to: r.trainingGroups.id,
      optional: false,
    }),
  },
  importSessions: {
    company: r.one.companies({
      from: r.importSessions.companyId,
      to: r.companies.id,
      optional: false,
    }),
    rows: r.many.importRows(),
    uploadFile: r.one.uploadFiles({
      from: r.importSessions.uploadFileId,
      to: r.uploadFiles.id,
    }),
  },
  importRows: {
    session: r.one.importSessions({
      from: r.importRows.sessionId,
      to: r.importSessions.id,
      optional: false,
    }),
  },
}));
