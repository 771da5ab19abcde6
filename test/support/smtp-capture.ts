import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One mail a loopback SMTP server received: its envelope's recipients and the raw message. */
export interface CapturedMail {
  to: string[];
  raw: Buffer;
}

export interface SmtpCapture {
  /** The server's address, for SMTP_URL. */
  url: string;
  /** Every mail received, in order (a test may empty it). */
  received: CapturedMail[];
  close(): Promise<void>;
}

/**
 * A plain SMTP server on loopback that keeps every mail it is sent, for the tests of report
 * mail: what went out, to whom, with which headers and body.
 */
export async function startSmtpCapture(): Promise<SmtpCapture> {
  const received: CapturedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    // Plain SMTP on loopback: the client would otherwise try to upgrade to TLS.
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          to: session.envelope.rcptTo.map((recipient) => recipient.address),
          raw: Buffer.concat(chunks),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
