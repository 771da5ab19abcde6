import { z } from 'zod';

const integer = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().optional(),
  DATA_DIR: z.string().default('./data'),
  PUBLIC_URL: z.string().url().optional(),
  BOOTSTRAP_ADMIN_TOKEN: z.string().min(16).optional(),
  SMTP_URL: z.string().url().optional(),
  /** Redis for events between processes; unset: Postgres LISTEN/NOTIFY (or in process on PGlite). */
  REDIS_URL: z.string().url().optional(),
  MAIL_FROM: z.string().default('Muster <muster@localhost>'),
  MAX_UPLOAD_BYTES: integer(50 * 1024 * 1024),
  MAX_ROWS: integer(1_000_000),
  /**
   * Cap on the bytes a workbook inflates to, enforced while inflating (zip bombs). At most
   * 2^31 - 1: progress reports inflated bytes as a GraphQL Int.
   */
  MAX_INFLATED_BYTES: integer(2_000_000_000).pipe(z.number().max(2_147_483_647)),
  /**
   * Cap on the bytes one import stages (its rows as JSON): one long text referenced from many
   * cells takes little room in the file and much in the database. Past it the import fails
   * with TOO_LARGE_STAGED.
   */
  MAX_STAGED_BYTES: integer(1024 * 1024 * 1024),
  /** How long a process's claim on an import's background work lasts without renewal. */
  WORK_LEASE_SECONDS: integer(30),
  /** Days after which ended imports lose their staged rows and stored file, and idle ones end. */
  IMPORT_RETENTION_DAYS: integer(7),
  /** A SYNC that would archive more than this share of the active users waits for an acknowledgement. */
  SYNC_ARCHIVE_LIMIT_PERCENT: z.coerce.number().min(0).max(100).default(10),
  /** Days after its commit during which an import can be reverted. */
  IMPORT_UNDO_DAYS: integer(7),
  /** Time allowed for reading one workbook before it fails. */
  READ_TIME_LIMIT_MS: integer(10 * 60 * 1000),
  /** Schema introspection (GraphiQL needs it); `false` also turns GraphiQL and field suggestions off. */
  GRAPHQL_INTROSPECTION: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
  /**
   * How long a process may answer for a token without asking the database (real Postgres only;
   * 0: never). A revocation reaches every process at once by NOTIFY; this bounds one missed.
   */
  TOKEN_CACHE_SECONDS: z.coerce.number().int().min(0).max(3600).default(10),
  /** Per API token: how many imports may start (and report emails go out) per minute. */
  WORK_RATE_LIMIT_PER_MINUTE: integer(30),
  /** When set, /metrics wants `Authorization: Bearer <METRICS_TOKEN>`; unset: /metrics is open. */
  METRICS_TOKEN: z.string().min(16).optional(),
  /** Bytes a request body may have, multipart uploads apart (those have MAX_UPLOAD_BYTES). */
  MAX_REQUEST_BYTES: integer(1024 * 1024),
  /** Time an API statement may run on Postgres before it is cancelled (background work apart). */
  STATEMENT_TIMEOUT_MS: integer(5_000),
  /** Subscriptions (SSE and graphql-ws together) one API token may hold open in one process. */
  MAX_SUBSCRIPTIONS_PER_TOKEN: integer(20),
  /** Custom fields one company may have. */
  MAX_CUSTOM_FIELDS: integer(200),
  /** Report emails (one per recipient) one company may send per hour. */
  MAIL_PER_COMPANY_PER_HOUR: integer(100),
  /**
   * Origins (scheme://host[:port], comma-separated) whose pages may call the API from a
   * browser; unset: none, the API answers its own origin only.
   */
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter((origin) => origin !== ''),
    )
    .pipe(z.array(z.string().url())),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  NODE_ENV: z.string().default('production'),
});

export type Config = z.infer<typeof configSchema>;

/** Reads the configuration from the environment; a bad value stops the start with its name. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.')}: ${issue.message}`,
    );
    throw new Error(`Invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}
