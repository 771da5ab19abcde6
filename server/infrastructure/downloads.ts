import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed, expiring download links. A token is `<payload>.<signature>`, both base64url: the
 * payload is the JSON claims, the signature an HMAC-SHA256 of it. The claims name the
 * company, so the download route can refuse a link opened under another company's session.
 */

export type DownloadKind = 'IMPORT_TEMPLATE' | 'ERROR_REPORT' | 'IMPORTED_USERS_REPORT';

export interface DownloadClaims {
  kind: DownloadKind;
  companyId: string;
  /** The import session a report belongs to; absent for the template. */
  sessionId?: string;
  expiresAt: Date;
}

export const DOWNLOAD_TTL_MS = 15 * 60 * 1000;

export class DownloadLinkError extends Error {
  override readonly name = 'DownloadLinkError';
  constructor(readonly code: 'INVALID' | 'EXPIRED') {
    super(
      code === 'EXPIRED'
        ? 'This download link has expired; request a new one.'
        : 'This download link is not valid.',
    );
  }
}

// Mixed into the MAC so a value signed with the same secret for another purpose is never
// accepted as a download link.
const SIGNATURE_CONTEXT = 'muster-download-v1.';

/** The signed form of the claims: the date as epoch milliseconds. */
interface DownloadPayload {
  kind: DownloadKind;
  companyId: string;
  sessionId?: string;
  expiresAt: number;
}

function sign(secret: string, encodedPayload: string): string {
  // An empty key would let anyone compute valid signatures: a configuration bug, not a bad link.
  if (secret.length === 0) throw new Error('The download signing secret is empty.');
  return createHmac('sha256', secret)
    .update(SIGNATURE_CONTEXT + encodedPayload)
    .digest('base64url');
}

export function signDownload(secret: string, claims: DownloadClaims): string {
  const expiresAt = claims.expiresAt.getTime();
  if (Number.isNaN(expiresAt)) throw new RangeError('Download expiresAt is not a valid date.');
  const payload: DownloadPayload = {
    kind: claims.kind,
    companyId: claims.companyId,
    ...(claims.sessionId === undefined ? {} : { sessionId: claims.sessionId }),
    expiresAt,
  };
  const encodedPayload = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  return `${encodedPayload}.${sign(secret, encodedPayload)}`;
}

/** The claims of a link this server signed, if it has not expired; else a DownloadLinkError. */
export function verifyDownload(secret: string, token: string, now = new Date()): DownloadClaims {
  const separator = token.indexOf('.');
  if (separator < 0) throw new DownloadLinkError('INVALID');
  const encodedPayload = token.slice(0, separator);
  const signature = token.slice(separator + 1);

  // Compare the encoded text, not decoded bytes: base64url decoding ignores trailing bits and
  // stray characters, so different signature strings can decode to the same bytes.
  const expected = Buffer.from(sign(secret, encodedPayload), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new DownloadLinkError('INVALID');
  }

  // Only this server's signDownload could have written a payload with a valid signature, so
  // its shape needs no further checks. Expiry comes after the signature check, so a forged
  // link never learns whether it "expired".
  const payload = JSON.parse(
    Buffer.from(encodedPayload, 'base64url').toString('utf8'),
  ) as DownloadPayload;
  if (now.getTime() >= payload.expiresAt) throw new DownloadLinkError('EXPIRED');

  return {
    kind: payload.kind,
    companyId: payload.companyId,
    ...(payload.sessionId === undefined ? {} : { sessionId: payload.sessionId }),
    expiresAt: new Date(payload.expiresAt),
  };
}
