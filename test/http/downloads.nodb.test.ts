import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DOWNLOAD_TTL_MS,
  type DownloadClaims,
  DownloadLinkError,
  signDownload,
  verifyDownload,
} from '../../server/infrastructure/downloads.js';

const SECRET = 'test-download-secret';
const NOW = new Date('2030-01-01T12:00:00.000Z');

const reportClaims: DownloadClaims = {
  kind: 'ERROR_REPORT',
  companyId: '3f1d0b6e-8e2a-4c55-9a7e-0a3c1e2b4d5f',
  sessionId: '9b7c5a3e-1d2f-4e6a-8b0c-2d4f6a8b0c1e',
  expiresAt: new Date(NOW.getTime() + DOWNLOAD_TTL_MS),
};

const templateClaims: DownloadClaims = {
  kind: 'IMPORT_TEMPLATE',
  companyId: '3f1d0b6e-8e2a-4c55-9a7e-0a3c1e2b4d5f',
  expiresAt: new Date(NOW.getTime() + DOWNLOAD_TTL_MS),
};

function verifyError(
  token: string,
  secret = SECRET,
  now: Date | undefined = NOW,
): DownloadLinkError {
  try {
    verifyDownload(secret, token, now);
  } catch (error) {
    expect(error).toBeInstanceOf(DownloadLinkError);
    return error as DownloadLinkError;
  }
  throw new Error('verifyDownload accepted the token');
}

/** The token with the character at `index` replaced by a different base64url character. */
function flipCharacter(token: string, index: number): string {
  const replacement = token[index] === 'A' ? 'B' : 'A';
  return token.slice(0, index) + replacement + token.slice(index + 1);
}

describe('signDownload / verifyDownload', () => {
  it('round-trips claims with a session', () => {
    const token = signDownload(SECRET, reportClaims);
    expect(verifyDownload(SECRET, token, NOW)).toEqual(reportClaims);
  });

  it('round-trips claims without a session, and adds no sessionId', () => {
    const token = signDownload(SECRET, templateClaims);
    const claims = verifyDownload(SECRET, token, NOW);
    expect(claims).toEqual(templateClaims);
    expect(claims).not.toHaveProperty('sessionId');
  });

  it('signs every kind', () => {
    for (const kind of ['IMPORT_TEMPLATE', 'ERROR_REPORT', 'IMPORTED_USERS_REPORT'] as const) {
      const token = signDownload(SECRET, { ...reportClaims, kind });
      expect(verifyDownload(SECRET, token, NOW).kind).toBe(kind);
    }
  });

  it('makes URL-safe tokens', () => {
    const token = signDownload(SECRET, reportClaims);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(encodeURIComponent(token)).toBe(token);
  });

  it('binds the company: another company gives another token', () => {
    const other = signDownload(SECRET, { ...reportClaims, companyId: 'another-company' });
    expect(other).not.toBe(signDownload(SECRET, reportClaims));
    expect(verifyDownload(SECRET, other, NOW).companyId).toBe('another-company');
  });

  it('accepts a link until its last millisecond', () => {
    const token = signDownload(SECRET, reportClaims);
    const lastMoment = new Date(reportClaims.expiresAt.getTime() - 1);
    expect(verifyDownload(SECRET, token, lastMoment)).toEqual(reportClaims);
  });

  it('uses the current time by default', () => {
    const fresh = signDownload(SECRET, {
      ...reportClaims,
      expiresAt: new Date(Date.now() + 60_000),
    });
    expect(verifyDownload(SECRET, fresh).companyId).toBe(reportClaims.companyId);
    const stale = signDownload(SECRET, { ...reportClaims, expiresAt: new Date(Date.now() - 1) });
    expect(verifyError(stale, SECRET, undefined).code).toBe('EXPIRED');
  });

  it('rejects a link expired by 1 ms, and at the expiry instant', () => {
    const token = signDownload(SECRET, reportClaims);
    const expiresAt = reportClaims.expiresAt.getTime();
    expect(verifyError(token, SECRET, new Date(expiresAt + 1)).code).toBe('EXPIRED');
    expect(verifyError(token, SECRET, new Date(expiresAt)).code).toBe('EXPIRED');
  });

  it('rejects a changed character anywhere in the payload', () => {
    const token = signDownload(SECRET, reportClaims);
    const payloadLength = token.indexOf('.');
    for (let index = 0; index < payloadLength; index++) {
      expect(verifyError(flipCharacter(token, index)).code).toBe('INVALID');
    }
  });

  it('rejects a changed character anywhere in the signature', () => {
    const token = signDownload(SECRET, reportClaims);
    for (let index = token.indexOf('.') + 1; index < token.length; index++) {
      expect(verifyError(flipCharacter(token, index)).code).toBe('INVALID');
    }
  });

  it("rejects another link's payload under this link's signature", () => {
    const [, reportSignature] = signDownload(SECRET, reportClaims).split('.');
    const [otherPayload] = signDownload(SECRET, { ...reportClaims, companyId: 'x' }).split('.');
    expect(verifyError(`${otherPayload}.${reportSignature}`).code).toBe('INVALID');
  });

  it('rejects a signature that differs only in bits base64url decoding drops', () => {
    const token = signDownload(SECRET, reportClaims);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = token.at(-1) ?? '';
    // 32 bytes take 43 characters; the last one's two low bits are padding.
    const lookalike = token.slice(0, -1) + alphabet[alphabet.indexOf(last) ^ 1];
    const signatureBytes = (value: string) =>
      Buffer.from(value.slice(value.indexOf('.') + 1), 'base64url');
    expect(signatureBytes(lookalike)).toEqual(signatureBytes(token));
    expect(verifyError(lookalike).code).toBe('INVALID');
  });

  it('rejects a forged payload carrying a later expiry', () => {
    const token = signDownload(SECRET, reportClaims);
    const signature = token.slice(token.indexOf('.') + 1);
    const forged = Buffer.from(
      JSON.stringify({ ...reportClaims, expiresAt: NOW.getTime() + 10 * DOWNLOAD_TTL_MS }),
    ).toString('base64url');
    expect(verifyError(`${forged}.${signature}`).code).toBe('INVALID');
  });

  it('rejects truncated tokens', () => {
    const token = signDownload(SECRET, reportClaims);
    for (const length of [token.length - 1, token.indexOf('.') + 1, token.indexOf('.'), 10, 1]) {
      expect(verifyError(token.slice(0, length)).code).toBe('INVALID');
    }
  });

  it('rejects extra characters after the signature', () => {
    const token = signDownload(SECRET, reportClaims);
    expect(verifyError(`${token}A`).code).toBe('INVALID');
    expect(verifyError(`${token}.A`).code).toBe('INVALID');
  });

  it('rejects a link signed with another secret, even when expired', () => {
    const token = signDownload('another-secret', reportClaims);
    expect(verifyError(token).code).toBe('INVALID');
    expect(verifyError(token, SECRET, new Date(reportClaims.expiresAt.getTime() + 1)).code).toBe(
      'INVALID',
    );
  });

  it('rejects garbage', () => {
    const randomPart = () => randomBytes(48).toString('base64url');
    for (const garbage of [
      '',
      '.',
      'not a token',
      randomPart(),
      `${randomPart()}.${randomPart()}`,
      `${randomPart()}.${randomPart().slice(0, 43)}`,
      '..',
      '🙂.🙂',
    ]) {
      expect(verifyError(garbage).code).toBe('INVALID');
    }
  });

  it('refuses an empty secret instead of signing with it', () => {
    expect(() => signDownload('', reportClaims)).toThrow(/secret is empty/);
    expect(() => verifyDownload('', signDownload(SECRET, reportClaims), NOW)).toThrow(
      /secret is empty/,
    );
  });

  it('refuses an invalid expiry date', () => {
    expect(() =>
      signDownload(SECRET, { ...reportClaims, expiresAt: new Date(Number.NaN) }),
    ).toThrow(RangeError);
  });

  it('gives each failure a message a person can act on', () => {
    const token = signDownload(SECRET, reportClaims);
    const expired = verifyError(token, SECRET, new Date(reportClaims.expiresAt.getTime() + 1));
    expect(expired.message).toMatch(/expired/);
    expect(expired.name).toBe('DownloadLinkError');
    expect(verifyError('garbage').message).toMatch(/not valid/);
  });
});
