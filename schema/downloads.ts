import { createDownload } from '../server/http/download-route.js';
import { builder } from './builder.js';

export const DownloadRef = builder
  .objectRef<{ url: string; fileName: string; expiresAt: Date }>('Download')
  .implement({
    description:
      'A short-lived signed link to a file of your company. A plain GET of `url` returns it; no token is needed, so do not share the link.',
    fields: (t) => ({
      url: t.exposeString('url', { description: 'Absolute URL of the file.' }),
      fileName: t.exposeString('fileName', { description: 'Suggested file name.' }),
      expiresAt: t.expose('expiresAt', {
        type: 'DateTime',
        description: 'After this moment the link no longer works; ask for a new one.',
      }),
    }),
  });

builder.queryFields((t) => ({
  importTemplate: t.field({
    type: DownloadRef,
    description:
      'The .xlsx template for imports: one sheet whose header row is Email, userName, reference and then your custom fields.',
    resolve: async (_root, _args, ctx) =>
      createDownload(
        await ctx.signingSecret(),
        ctx.publicUrl,
        { kind: 'IMPORT_TEMPLATE', companyId: ctx.auth.companyId },
        'import-template.xlsx',
      ),
  }),
}));
