const levels = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof levels;

export interface Logger {
  debug(message: string, details?: Record<string, unknown>): void;
  info(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

/** Plain lines on stderr (stdout stays free for what a command prints), one per event. */
export function createLogger(level: LogLevel): Logger {
  const write =
    (at: Exclude<LogLevel, 'silent'>) => (message: string, details?: Record<string, unknown>) => {
      if (levels[at] < levels[level]) return;
      const suffix = details ? ` ${JSON.stringify(details)}` : '';
      process.stderr.write(`${new Date().toISOString()} ${at.toUpperCase()} ${message}${suffix}\n`);
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
