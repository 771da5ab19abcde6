import { createHash, randomBytes } from 'node:crypto';
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { Database } from '../../drizzle/client.js';
import { apiTokens, companies } from '../../drizzle/tables.js';

export type TokenRole = 'ADMIN' | 'VIEWER';

/** Who is calling: resolved from the bearer token of every request. */
export interface Auth {
  companyId: string;
  role: TokenRole;
  tokenId: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token; `mst_` makes leaked tokens easy to find with secret scanners. */
export function generateToken(): string {
  return `mst_${randomBytes(32).toString('base64url')}`;
}

/** Reads `Authorization: Bearer <token>`; anything else is no token. */
export function bearerToken(header: string | null | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1] ?? null;
}

export async function authenticate(db: Database, token: string): Promise<Auth | null> {
  const [row] = await db
    .select({ id: apiTokens.id, companyId: apiTokens.companyId, role: apiTokens.role })
    .from(apiTokens)
    .where(and(eq(apiTokens.tokenHash, hashToken(token)), isNull(apiTokens.revokedAt)))
    .limit(1);
  return row ? { companyId: row.companyId, role: row.role, tokenId: row.id } : null;
}

/** Stores a token for a company (hashed) and returns the only copy of it in clear. */
export async function createToken(
  db: Database,
  input: { companyId: string; role: TokenRole; label?: string; token?: string },
): Promise<{ id: string; token: string }> {
  const token = input.token ?? generateToken();
  const [row] = await db
    .insert(apiTokens)
    .values({
      companyId: input.companyId,
      role: input.role,
      label: input.label,
      tokenHash: hashToken(token),
    })
    .returning({ id: apiTokens.id });
  if (!row) throw new Error('token insert returned nothing');
  return { id: row.id, token };
}

/** Revokes a token by its id; false when there is no such live token. */
export async function revokeToken(db: Database, tokenId: string): Promise<boolean> {
  const rows = await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.id, tokenId), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  return rows.length > 0;
}

export async function createCompany(
  db: Database,
  name: string,
  options: { token?: string } = {},
): Promise<{ companyId: string; tokenId: string; token: string }> {
  return db.transaction(async (tx) => {
    const [company] = await tx.insert(companies).values({ name }).returning({ id: companies.id });
    if (!company) throw new Error('company insert returned nothing');
    const created = await createToken(tx as unknown as Database, {
      companyId: company.id,
      role: 'ADMIN',
      label: 'created with the company',
      token: options.token,
    });
    return { companyId: company.id, tokenId: created.id, token: created.token };
  });
}

/**
 * Notes when tokens are used (api_tokens.last_used_at, shown by the apiTokens query): one
 * UPDATE per token and minute from each process at most, sent without waiting for it, so a
 * request never waits on it or fails by it.
 */
export function createTokenUseRecorder(
  db: Database,
  options: { intervalMs?: number; onError?: (error: unknown) => void } = {},
): (tokenId: string) => void {
  const intervalMs = options.intervalMs ?? 60_000;
  const recorded = new Map<string, number>();
  return (tokenId) => {
    const now = Date.now();
    if ((recorded.get(tokenId) ?? Number.NEGATIVE_INFINITY) > now - intervalMs) return;
    // Bounded: a process that saw very many tokens starts over (a few extra UPDATEs at most).
    if (recorded.size >= 10_000) recorded.clear();
    recorded.set(tokenId, now);
    db.update(apiTokens)
      .set({ lastUsedAt: sql`now()` })
      .where(
        and(
          eq(apiTokens.id, tokenId),
          or(
            isNull(apiTokens.lastUsedAt),
            lt(apiTokens.lastUsedAt, sql`now() - make_interval(secs => ${intervalMs / 1000})`),
          ),
        ),
      )
      .then(
        () => {},
        (error: unknown) => options.onError?.(error),
      );
  };
}
