import type { Client } from '@urql/core';
import { type ImportUserChangePartsFragment, RevertImportDocument } from './gql/graphql.js';
import {
  followSession,
  type ImportSession,
  ImportUsersError,
  requireData,
} from './import-users.js';

/** revertImport refused: users changed since the import (only without `force`). */
export class RevertConflictsError extends ImportUsersError {
  override name = 'RevertConflictsError';
  constructor(
    message: string,
    session: ImportSession | null,
    /** How many users changed since the import. */
    readonly conflictCount: number,
    /** The first of them, with what the import did to each. */
    readonly conflicts: ImportUserChangePartsFragment[],
  ) {
    super(message, { reason: 'refused', code: 'REVERT_CONFLICT', stage: 'COMPLETED', session });
  }
}

/**
 * Undoes a COMPLETED import (within the server's IMPORT_UNDO_DAYS) and waits for the revert to
 * end; returns the session, REVERTED with its revertResult. With `force`, users changed since
 * the import are left as they are (counted in revertResult.conflicts); without it the revert
 * is refused with a RevertConflictsError listing the first of them. Other refusals (not
 * COMPLETED, too old) throw an ImportUsersError with reason `refused`.
 */
export async function revertImport(
  client: Client,
  sessionId: string,
  options: { force?: boolean; onProgress?: (session: ImportSession) => void } = {},
): Promise<ImportSession> {
  const result = await client
    .mutation(RevertImportDocument, { input: { sessionId, force: options.force ?? false } })
    .toPromise();
  const payload = requireData(result, 'COMPLETED', null).revertImport;
  if (payload.__typename === 'RevertConflictError') {
    throw new RevertConflictsError(
      payload.message,
      null,
      payload.conflictCount,
      payload.conflicts.edges.map((edge) => edge.node),
    );
  }
  if (payload.__typename !== 'ImportSession') {
    throw new ImportUsersError(payload.message, {
      reason: 'refused',
      code: payload.code,
      stage: 'COMPLETED',
      session: null,
    });
  }
  options.onProgress?.(payload);
  let latest = payload;
  for await (const session of followSession(client, sessionId, () => latest)) {
    latest = session;
    options.onProgress?.(session);
    if (session.stage === 'REVERTED') return session;
    if (!session.busy && session.failure) {
      throw new ImportUsersError(session.failure.message, {
        reason: 'refused',
        code: session.failure.code,
        stage: session.stage,
        session,
      });
    }
  }
  throw new ImportUsersError('The updates of the revert ended before it did.', {
    reason: 'interrupted',
    code: 'INTERRUPTED',
    stage: latest.stage,
    session: latest,
  });
}
