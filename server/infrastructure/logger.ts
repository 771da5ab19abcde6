import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, stdTimeFunctions } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(message: string, details?: Record<string, unknown>): void;
  info(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

/** Where lines go: anything with write(line). Default: stderr (stdout stays free for what a command prints). */
export interface LogDestination {
  write(line: string): void;
}

export interface LoggerOptions {
  destination?: LogDestination;
  /** Human-readable lines instead of JSON; default: when stderr is a terminal. */
  pretty?: boolean;
}

/**
 * The request being served, for every line logged while serving it (and what it started in
 * the same process): the HTTP layer runs each request inside `requestScope.run(...)`.
 */
export const requestScope = new AsyncLocalStorage<{ requestId: string }>();

export function currentRequestId(): string | undefined {
  return requestScope.getStore()?.requestId;
}

/**
 * One JSON object a line (`time`, `level`, `msg`, then the details), so that a log collector
 * needs no parser of its own; on a terminal, one readable line an event instead.
 */
export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? (options.destination === undefined && process.stderr.isTTY);
  // Synchronous: a line logged just before process.exit() (a failed start) is not lost.
  const target = options.destination ?? pino.destination({ fd: 2, sync: true });
  const destination = pretty ? prettyLines(target) : target;
  const base = pino(
    {
      level,
      base: undefined,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => {
        const requestId = currentRequestId();
        return requestId ? { requestId } : {};
      },
    },
    destination,
  );
  const write =
    (at: Exclude<LogLevel, 'silent'>) => (message: string, details?: Record<string, unknown>) => {
      if (details) base[at](details, message);
      else base[at](message);
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** `12:00:01.234 INFO  message key=value …` from pino's JSON lines. */
function prettyLines(target: LogDestination): LogDestination {
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        target.write(line);
        return;
      }
      const { time, level, msg, ...details } = entry;
      const clock = typeof time === 'string' ? time.slice(11, 23) : '';
      const fields = Object.entries(details)
        .map(
          ([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
        )
        .join(' ');
      const label = String(level).toUpperCase().padEnd(5);
      target.write(`${clock} ${label} ${String(msg ?? '')}${fields ? `  ${fields}` : ''}\n`);
    },
  };
}
