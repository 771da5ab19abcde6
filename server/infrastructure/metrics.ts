import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** What the metrics read from the database when scraped (none of it is kept in memory). */
export interface MetricSources {
  /** Import sessions by stage, and how many of them have background work pending or running. */
  importsByStage(): Promise<{ stage: string; busy: boolean; count: number }[]>;
  /** Connections this process may open, and the database's connections by state (Postgres). */
  pool(): Promise<{ max: number; connections: { state: string; count: number }[] }>;
  /** Runs `select 1` through the pool: the time includes waiting for a free connection. */
  ping(): Promise<void>;
}

export interface Metrics {
  registry: Registry;
  /** HTTP requests by operation (a GraphQL operation's type and first root field) and status. */
  requests: Counter<'operation' | 'status'>;
  requestDuration: Histogram<'operation'>;
  /** GraphQL errors and refused requests, by their `extensions.code`. */
  errors: Counter<'code'>;
  importSteps: Histogram<'step' | 'outcome'>;
  importRows: Counter<'step'>;
  importFailures: Counter<'code'>;
  /** Steps this process lost because its lease ran out and another process took the session. */
  leaseLosses: Counter;
}

/**
 * One registry per server (tests run several in a process), with Node's own metrics
 * (event-loop lag, heap, GC, handles) under `nodejs_` and `process_`, and Muster's under
 * `muster_`.
 */
export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  const stepSeconds = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

  new Gauge({
    name: 'muster_import_sessions',
    help: 'Import sessions in the database by stage; busy: background work pending or running.',
    labelNames: ['stage', 'busy'],
    registers,
    async collect() {
      this.reset();
      for (const row of await sources.importsByStage()) {
        this.set({ stage: row.stage, busy: String(row.busy) }, row.count);
      }
    },
  });
  new Gauge({
    name: 'muster_db_pool_max_connections',
    help: 'Connections this process may hold to the database (1 on the embedded database).',
    registers,
    async collect() {
      this.set((await sources.pool()).max);
    },
  });
  new Gauge({
    name: 'muster_db_connections',
    help: "The database's connections by state, all processes together (Postgres only; pg_stat_activity).",
    labelNames: ['state'],
    registers,
    async collect() {
      this.reset();
      for (const row of (await sources.pool()).connections) {
        this.set({ state: row.state }, row.count);
      }
    },
  });
  new Gauge({
    name: 'muster_db_ping_seconds',
    help: 'Time for `select 1` through the pool at scrape time; grows when every connection is busy.',
    registers,
    async collect() {
      const started = performance.now();
      await sources.ping();
      this.set((performance.now() - started) / 1000);
    },
  });

  return {
    registry,
    requests: new Counter({
      name: 'muster_http_requests_total',
      help: 'HTTP requests by operation (GraphQL: type and first root field) and status.',
      labelNames: ['operation', 'status'],
      registers,
    }),
    requestDuration: new Histogram({
      name: 'muster_http_request_duration_seconds',
      help: 'Time from a request to the end of its response, by operation.',
      labelNames: ['operation'],
      buckets: seconds,
      registers,
    }),
    errors: new Counter({
      name: 'muster_errors_total',
      help: 'Errors returned to callers, by code (GraphQL extensions.code).',
      labelNames: ['code'],
      registers,
    }),
    importSteps: new Histogram({
      name: 'muster_import_step_duration_seconds',
      help: 'Background import steps by step and outcome (completed, failed, cancelled, lease_lost, handed_back, error).',
      labelNames: ['step', 'outcome'],
      buckets: stepSeconds,
      registers,
    }),
    importRows: new Counter({
      name: 'muster_import_rows_processed_total',
      help: 'Rows gone through a background import step, by step.',
      labelNames: ['step'],
      registers,
    }),
    importFailures: new Counter({
      name: 'muster_import_failures_total',
      help: 'Imports that ended FAILED, by failure code.',
      labelNames: ['code'],
      registers,
    }),
    leaseLosses: new Counter({
      name: 'muster_import_lease_losses_total',
      help: 'Steps this process stopped because its lease ran out and another process took the session.',
      registers,
    }),
  };
}
