import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { apiTokens } from '../../drizzle/tables.js';
import { AppError, NotFoundError } from '../errors.js';
import { createToken, type TokenRole } from '../infrastructure/auth.js';

/** A token as its company's admins see it: never its secret (only its hash is stored). */
export interface ApiToken {
  id: string;
  role: TokenRole;
  label: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** Revoking it would leave the company with no ADMIN token, so no one could manage it. */
export class LastAdminTokenError extends AppError {
  readonly code = 'LAST_ADMIN_TOKEN';
  constructor() {
    super(
      'This is the last ADMIN token of your company: create another ADMIN token first, then revoke this one.',
    );
  }
}

const columns = {
  id: apiTokens.id,
  role: apiTokens.role,
  label: apiTokens.label,
  createdAt: apiTokens.createdAt,
  lastUsedAt: apiTokens.lastUsedAt,
  revokedAt: apiTokens.revokedAt,
};

/** The company's tokens that still work, oldest first. */
export function listApiTokens(db: Database, companyId: string): Promise<ApiToken[]> {
  return db
    .select(columns)
    .from(apiTokens)
    .where(and(eq(apiTokens.companyId, companyId), isNull(apiTokens.revokedAt)))
    .orderBy(asc(apiTokens.createdAt), asc(apiTokens.id));
}

/** One of the company's tokens, revoked ones included; undefined when it has no such token. */
export async function findApiToken(
  db: Database,
  companyId: string,
  tokenId: string,
): Promise<ApiToken | undefined> {
  const [token] = await db
    .select(columns)
    .from(apiTokens)
    .where(and(eq(apiTokens.id, tokenId), eq(apiTokens.companyId, companyId)));
  return token;
}

/** A new token of the company; its secret is returned here and never again. */
export async function createApiToken(
  db: Database,
  companyId: string,
  input: { role: TokenRole; label: string },
): Promise<{ token: ApiToken; secret: string }> {
  const created = await createToken(db, { companyId, role: input.role, label: input.label });
  const [token] = await db.select(columns).from(apiTokens).where(eq(apiTokens.id, created.id));
  if (!token) throw new Error('created token not found');
  return { token, secret: created.token };
}

/**
 * Revokes one of the company's live tokens. The company's live ADMIN tokens are locked first,
 * so two admins revoking each other's token at once cannot leave none.
 */
export function revokeApiToken(
  db: Database,
  companyId: string,
  tokenId: string,
): Promise<ApiToken> {
  return db.transaction(async (tx) => {
    const admins = await tx
      .select({ id: apiTokens.id })
      .from(apiTokens)
      .where(
        and(
          eq(apiTokens.companyId, companyId),
          eq(apiTokens.role, 'ADMIN'),
          isNull(apiTokens.revokedAt),
        ),
      )
      .for('update');
    const [token] = await tx
      .select(columns)
      .from(apiTokens)
      .where(
        and(
          eq(apiTokens.id, tokenId),
          eq(apiTokens.companyId, companyId),
          isNull(apiTokens.revokedAt),
        ),
      )
      .for('update');
    if (!token) throw new NotFoundError('API token', tokenId);
    if (token.role === 'ADMIN' && admins.length <= 1) throw new LastAdminTokenError();
    const [revoked] = await tx
      .update(apiTokens)
      .set({ revokedAt: sql`now()` })
      .where(eq(apiTokens.id, tokenId))
      .returning(columns);
    if (!revoked) throw new Error('revoked token not found');
    return revoked;
  });
}
