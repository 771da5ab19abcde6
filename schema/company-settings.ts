import { z } from 'zod';
import { isMailDomain } from '../server/infrastructure/mail.js';
import {
  MAX_REPORT_MAIL_DOMAINS,
  type ReportMailDomains,
  reportMailDomains,
  setReportMailDomains,
} from '../server/settings/report-mail-domains.js';
import { builder } from './builder.js';
import { inputErrors } from './errors.js';
import { singleLineText } from './validation.js';

const mailDomain = singleLineText('A domain', 253).refine(
  (value) => isMailDomain(value.toLowerCase()),
  { message: 'A domain must be a host name such as example.com: no IP address, no @, no port.' },
);

const CompanySettings = builder.objectRef<ReportMailDomains>('CompanySettings').implement({
  description: 'Settings of the company that an ADMIN manages.',
  fields: (t) => ({
    reportMailDomains: t.exposeStringList('domains', {
      description:
        'The domains report mail (emailImportReport) may go to, lower case and sorted; an address must be in one of them exactly (a subdomain is a domain of its own).',
    }),
    reportMailDomainsSet: t.exposeBoolean('custom', {
      description:
        'True when an ADMIN set reportMailDomains; false when they are the domains of the company’s own users’ emails (the default, which follows the users).',
    }),
  }),
});

builder.queryFields((t) => ({
  companySettings: t.field({
    type: CompanySettings,
    description: 'The settings of the company.',
    resolve: (_root, _args, ctx) => reportMailDomains(ctx.db, ctx.auth.companyId),
  }),
}));

builder.mutationFields((t) => ({
  setReportMailDomains: t.fieldWithInput({
    type: CompanySettings,
    description:
      'Sets the domains report mail may go to, or with `domains: null` goes back to the default (the domains of the company’s users’ emails). An empty list allows no report mail.',
    typeOptions: { description: 'The domains report mail may go to.' },
    errors: { types: [...inputErrors] },
    input: {
      domains: t.input.stringList({
        required: false,
        description: `Host names such as example.com (stored in lower case, repeats dropped), at most ${MAX_REPORT_MAIL_DOMAINS}; no IP addresses. Null: the default.`,
        validate: z
          .array(mailDomain)
          .max(MAX_REPORT_MAIL_DOMAINS, `Give at most ${MAX_REPORT_MAIL_DOMAINS} domains.`)
          .nullish(),
      }),
    },
    resolve: (_root, { input }, ctx) =>
      setReportMailDomains(
        ctx.db,
        ctx.auth.companyId,
        input.domains ? input.domains.map((domain) => domain.toLowerCase()) : null,
      ),
  }),
}));
