import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { print } from 'graphql';
import { ImportRowsDocument } from '../client/index.js';
import { readSseEvents } from '../test/support/sse.js';
import { maximum, median, p95 } from './stats.js';
import { CONTRACTOR_SUFFIX, DEPARTMENTS, PRESET_CUSTOM_FIELDS } from './workbook.js';

const REQUEST_TIMEOUT_MS = 30_000;
const PROBE_TIMEOUT_MS = 10_000;
const PROBE_INTERVAL_MS = 50;
const IDLE_WINDOW_MS = 5_000;
const IDLE_ROWS_PAGE_SAMPLES = 60;

export const SMALL_QUERY = '{ viewer { role } }';
/** The client package's own review page: every field of a row (fragment ImportRowParts). */
const CLIENT_ROWS_PAGE = print(ImportRowsDocument);
/** Page sizes of the client's review page measured: a usual one and the largest. */
export const CLIENT_PAGE_SIZES = [50, 100] as const;
const CLIENT_ROWS_SAMPLES = 60;
export const ROWS_PAGE = `query($id: ID!) { importSession(id: $id) {
  rows(first: 50) { edges { node { rowNumber action } } } } }`;
const SESSION_FIELDS = `stage busy rowCount validRowCount invalidRowCount
  progress { phase processed total }
  columns { header status }
  result { created updated unchanged skipped archived restored }
  failure { code message }`;
const FOLLOW = `subscription($id: ID!) { importSessionUpdated(id: $id) { ${SESSION_FIELDS} } }`;
const START_IMPORT = `mutation($input: StartImportInput!) { startImport(input: $input) {
  __typename ... on ImportSession { id stage busy } ... on Error { code message } } }`;
/** Read once at REVIEW of a SYNC, as a client's review screen does (not on every event). */
const ARCHIVE_WARNING = `query($id: ID!) { importSession(id: $id) {
  archiveWarning { archiveCount activeUserCount limitPercent } } }`;

export type ImportMode = 'ADD_AND_UPDATE' | 'SYNC';

/** A SYNC past SYNC_ARCHIVE_LIMIT_PERCENT, as the session shows it at REVIEW. */
export interface ArchiveWarning {
  archiveCount: number;
  activeUserCount: number;
  limitPercent: number;
}

export interface SessionView {
  stage: string;
  busy: boolean;
  rowCount: number;
  validRowCount: number;
  invalidRowCount: number;
  progress: { phase: string; processed: number; total: number | null } | null;
  columns: { header: string; status: string }[];
  result: {
    created: number;
    updated: number;
    unchanged: number;
    skipped: number;
    archived: number;
    restored: number;
  } | null;
  failure: { code: string; message: string } | null;
}

export interface TimedEvent {
  at: number;
  session: SessionView;
}

/** One GraphQL request over HTTP; throws on a transport error, a timeout or top-level errors. */
export async function graphql<T = unknown>(
  url: string,
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<T> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (body.errors || !body.data) {
    throw new Error(`GraphQL request failed (${response.status}): ${JSON.stringify(body.errors)}`);
  }
  return body.data;
}

/** What the benchmark reads of a mutation's payload: the object's id or key, or the error. */
export interface MutationPayload {
  id?: string;
  key?: string;
  code?: string;
  message?: string;
}

/** A mutation whose result is a union of the object and typed errors: returns the object. */
export async function mutate<T extends MutationPayload = MutationPayload>(
  url: string,
  token: string,
  mutation: string,
  variables: Record<string, unknown> = {},
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<T> {
  const data = await graphql<Record<string, T | null>>(url, token, mutation, variables, timeoutMs);
  const [payload] = Object.values(data);
  if (!payload || payload.code) throw new Error(`mutation failed: ${JSON.stringify(data)}`);
  return payload;
}

/**
 * The company as the benchmark needs it: Department and Country as custom fields, eight
 * training groups and eight ordered rules (the contractor domain, then Germany, then six
 * departments). The file's other new columns are added through confirmCustomFields.
 */
export async function setUpCompany(url: string, token: string): Promise<void> {
  const fieldKeys = new Map<string, string>();
  for (const label of PRESET_CUSTOM_FIELDS) {
    const field = await mutate(
      url,
      token,
      'mutation($label: String!) { createCustomField(input: { label: $label }) { __typename ... on CustomField { key } ... on Error { code message } } }',
      { label },
    );
    fieldKeys.set(label, field.key ?? '');
  }
  const rules: { group: string; fieldKey: string; operator: string; value: string }[] = [
    { group: 'Contractors', fieldKey: 'email', operator: 'ENDS_WITH', value: CONTRACTOR_SUFFIX },
    {
      group: 'DACH onboarding',
      fieldKey: fieldKeys.get('Country') as string,
      operator: 'EQUALS',
      value: 'Germany',
    },
    ...DEPARTMENTS.slice(0, 6).map((department) => ({
      group: `${department} training`,
      fieldKey: fieldKeys.get('Department') as string,
      operator: 'EQUALS',
      value: department,
    })),
  ];
  for (const rule of rules) {
    const group = await mutate(
      url,
      token,
      'mutation($name: String!) { createTrainingGroup(input: { name: $name }) { __typename ... on TrainingGroup { id } ... on Error { code message } } }',
      { name: rule.group },
    );
    await mutate(
      url,
      token,
      `mutation($input: CreateDistributionRuleInput!) { createDistributionRule(input: $input) {
        __typename ... on DistributionRule { id } ... on Error { code message } } }`,
      {
        input: {
          fieldKey: rule.fieldKey,
          operator: rule.operator,
          value: rule.value,
          trainingGroupId: group.id,
        },
      },
    );
  }
}

export interface Probe {
  /**
   * Latencies of the requests that started within [from, to], in ms, corrected for
   * coordinated omission: a request that took L ms stands also for the requests a client
   * on a fixed 50 ms schedule would have sent meanwhile (L − 50, L − 100, …), as
   * HdrHistogram's recordValueWithExpectedInterval does. Without it one 10 s stall is one
   * sample among hundreds and vanishes from the p95.
   */
  between(from: number, to?: number): number[];
  /** The same without the correction: one sample per request actually sent. */
  rawBetween(from: number, to?: number): number[];
  failures: number;
  /** What the first failed request threw, for the record. */
  firstFailure: string | null;
  stop(): Promise<void>;
}

/**
 * What a failed request threw, with its cause: fetch says only "fetch failed" and keeps the
 * reason (a reset connection, a timeout) in `cause`.
 */
function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (!cause) return error.message;
  return `${error.message}: ${[cause.code, cause.message].filter(Boolean).join(' ')}`;
}

/** Sends `request` every `intervalMs` (one at a time) and records how long each took. */
export function startProbe(request: () => Promise<unknown>, intervalMs = PROBE_INTERVAL_MS): Probe {
  const samples: { at: number; ms: number }[] = [];
  let stopped = false;
  const rawBetween = (from: number, to = Number.POSITIVE_INFINITY) =>
    samples.filter((sample) => sample.at >= from && sample.at <= to).map((sample) => sample.ms);
  const probe = {
    failures: 0,
    firstFailure: null as string | null,
    rawBetween,
    between: (from: number, to = Number.POSITIVE_INFINITY) =>
      rawBetween(from, to).flatMap((ms) => {
        const missed: number[] = [ms];
        for (let value = ms - intervalMs; value > intervalMs; value -= intervalMs) {
          missed.push(value);
        }
        return missed;
      }),
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
  const loop = (async () => {
    while (!stopped) {
      const at = performance.now();
      try {
        await request();
      } catch (error) {
        probe.failures++;
        probe.firstFailure ??= describeFailure(error);
      }
      const ms = performance.now() - at;
      samples.push({ at, ms });
      await sleep(Math.max(0, intervalMs - ms));
    }
  })();
  return probe;
}

/**
 * Follows a session over Server-Sent Events (Yoga's default transport), stamping each event
 * with its arrival time. `waitFor` hands out events in order.
 */
export class SessionFollower {
  readonly events: TimedEvent[] = [];
  private cursor = 0;
  private ended = false;
  private failure: unknown = null;
  private notify: (() => void) | null = null;
  private readonly abort = new AbortController();

  constructor(url: string, token: string, id: string) {
    void this.read(url, token, id).then(
      () => this.end(null),
      (error: unknown) => this.end(error),
    );
  }

  private end(error: unknown): void {
    this.ended = true;
    if (!this.abort.signal.aborted) this.failure = error;
    this.notify?.();
  }

  private async read(url: string, token: string, id: string): Promise<void> {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ query: FOLLOW, variables: { id } }),
      signal: this.abort.signal,
    });
    if (!response.body) throw new Error(`no event stream: ${response.status}`);
    for await (const payload of readSseEvents(response.body)) {
      // Stamped as the event is handed out, right as its block has arrived.
      const at = performance.now();
      const session = payload.data?.importSessionUpdated as SessionView | undefined;
      if (!session) throw new Error(`subscription error: ${JSON.stringify(payload)}`);
      this.events.push({ at, session });
      this.notify?.();
    }
  }

  /** The next event (from where the last wait stopped) that satisfies `accept`. */
  async waitFor(
    what: string,
    accept: (session: SessionView) => boolean,
    deadline: number,
  ): Promise<TimedEvent> {
    for (;;) {
      while (this.cursor < this.events.length) {
        const event = this.events[this.cursor++] as TimedEvent;
        const { stage, failure } = event.session;
        if (stage === 'FAILED' || stage === 'CANCELLED') {
          throw new Error(
            `the import ended ${stage} while waiting for ${what}: ${failure?.message}`,
          );
        }
        if (accept(event.session)) return event;
      }
      if (this.ended) {
        throw new Error(`the subscription ended while waiting for ${what}: ${this.failure ?? ''}`);
      }
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.notify = null;
    }
  }

  close(): void {
    this.abort.abort();
  }
}

/**
 * The GraphQL multipart startImport request for a file, encoded before the clock starts:
 * encoding the 66 MB of a million-row file took the bench's own event loop 1.4-1.6 s, which
 * counted as upload time and held back the probes meanwhile (a `{viewer}` "waiting" 1.5 s).
 * With `chunked`, the body is encoded as it is sent, without a Content-Length (chunked
 * transfer encoding): Yoga's default 25 MB `maxRequestBodySize` refuses a larger multipart
 * request by its Content-Length with a 413, before Muster's own MAX_UPLOAD_BYTES is even
 * looked at; streaming gets past that check.
 */
export interface PreparedUpload {
  mode: ImportMode;
  contentType: string;
  /** The encoded body, or (chunked) the Response whose body stream encodes it when sent. */
  body: ArrayBuffer | Response;
}

export async function prepareUpload(
  path: string,
  chunked: boolean,
  mode: ImportMode = 'ADD_AND_UPDATE',
): Promise<PreparedUpload> {
  const form = new FormData();
  form.set(
    'operations',
    JSON.stringify({
      query: START_IMPORT,
      variables: { input: { file: null, comment: 'benchmark', mode } },
    }),
  );
  form.set('map', JSON.stringify({ 0: ['variables.input.file'] }));
  form.set('0', new Blob([await readFile(path)]), basename(path));
  const encoded = new Response(form);
  return {
    mode,
    contentType: encoded.headers.get('content-type') ?? '',
    body: chunked ? encoded : await encoded.arrayBuffer(),
  };
}

/** POSTs a prepared startImport request; returns the new session's id. */
async function uploadWorkbook(
  url: string,
  token: string,
  upload: PreparedUpload,
  timeoutMs: number,
): Promise<string> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'x-graphql-yoga-csrf': '1',
      'content-type': upload.contentType,
    },
    // Chunked: the multipart body is encoded as it is sent, as a client piping a file does.
    body: upload.body instanceof Response ? upload.body.body : upload.body,
    duplex: 'half',
    signal: AbortSignal.timeout(timeoutMs),
  } as RequestInit);
  const body = (await response.json()) as { data?: { startImport?: MutationPayload } };
  const session = body?.data?.startImport;
  if (!session?.id)
    throw new Error(`startImport failed (${response.status}): ${JSON.stringify(body)}`);
  return session.id as string;
}

/** continueImport from `stage`; `acknowledgeArchive` confirms a SYNC past the archive limit. */
export async function continueFrom(
  url: string,
  token: string,
  id: string,
  stage: string,
  acknowledgeArchive = false,
): Promise<void> {
  await mutate(
    url,
    token,
    `mutation($id: ID!, $stage: ImportStage!, $acknowledge: Boolean) { continueImport(input: { sessionId: $id, stage: $stage, acknowledgeArchive: $acknowledge }) {
      __typename ... on ImportSession { stage busy } ... on Error { code message } } }`,
    { id, stage, acknowledge: acknowledgeArchive || null },
  );
}

export interface ImportTimings {
  sessionId: string;
  startedAt: number;
  endedAt: number;
  /** Rows staged (the read ended) at this time: the rows page is probed from then on. */
  stagedAt: number;
  totalMs: number;
  stages: {
    uploadMs: number;
    firstEventMs: number;
    readMs: number;
    confirmMs: number;
    validationMs: number;
    reviewMs: number;
    groupsMs: number;
    commitMs: number;
  };
  /** When each stage ran, [from, to] in performance.now() time, for latency by stage. */
  windows: Record<string, [number, number]>;
  /** Upload response → first event carrying read progress (INFLATING or READING). */
  firstProgressMs: number;
  /** Gaps between events while the file was read (read progress every 150 ms, beats after 200 ms). */
  readGaps: number[];
  /**
   * The longest time without an event while the session was busy: in which phase, when it
   * began (ms after the upload started) and how far the phase had got (`processed`).
   */
  busyGapMax: BusyGap;
  /**
   * The longest time the session stayed busy without its progress moving (stage, phase and
   * processed alike in every event meanwhile: the worker's heartbeat repeats the progress as
   * it stands while a statement cannot report).
   */
  stillGapMax: BusyGap;
  /** Events that repeated the event before them (heartbeats). */
  repeatedEvents: number;
  result: SessionView['result'];
  rowCount: number;
  invalidRowCount: number;
  events: number;
  /** A SYNC's archive warning at REVIEW, acknowledged in continueImport; null when none. */
  archiveWarning: ArchiveWarning | null;
}

export interface BusyGap {
  ms: number;
  /** `stage/progress phase` at its start. */
  phase: string;
  /** When it began, ms after the upload started. */
  afterMs: number;
  /** How far the phase had got when it began. */
  processed: number | null;
}

/** A confirmation or continue: when it was sent, and when its answer (busy: true) came. */
interface Resume {
  sentAt: number;
  answeredAt: number;
}

/**
 * The events, with one more wherever a confirmation or continue was answered before the
 * follower heard anything since sending it: the session, as last heard, but busy. From
 * then on the step is running, whatever the follower last heard; without this, the silence
 * of a step whose first event comes late (PGlite's, until it took turns with the event loop)
 * began at an event that was not busy and did not count.
 */
function withResumes(events: TimedEvent[], resumes: Resume[]): TimedEvent[] {
  const added = resumes.flatMap(({ sentAt, answeredAt }): TimedEvent[] => {
    if (events.some((event) => event.at >= sentAt && event.at <= answeredAt)) return [];
    const before = events.filter((event) => event.at < sentAt).at(-1);
    if (!before) return [];
    const progress = { phase: 'CONTINUED', processed: 0, total: null };
    return [{ at: answeredAt, session: { ...before.session, busy: true, progress } }];
  });
  return [...events, ...added].sort((a, b) => a.at - b.at);
}

/** The longest stretch while busy between events that `differ` (all events, or changes). */
export function longestBusyGap(
  events: TimedEvent[],
  startedAt: number,
  differ: (a: TimedEvent, b: TimedEvent) => boolean,
): BusyGap {
  let longest: BusyGap = { ms: 0, phase: '', afterMs: 0, processed: null };
  let since = events[0];
  for (const event of events.slice(1)) {
    if (!since || !differ(since, event)) continue;
    const gap = event.at - since.at;
    if (since.session.busy && gap > longest.ms) {
      longest = {
        ms: gap,
        phase: `${since.session.stage}/${since.session.progress?.phase ?? '-'}`,
        afterMs: since.at - startedAt,
        processed: since.session.progress?.processed ?? null,
      };
    }
    since = event;
  }
  return longest;
}

/** What a follower sees move: the stage, busy, and the progress. */
function progressKey(event: TimedEvent): string {
  const { stage, busy, progress } = event.session;
  return `${stage}|${busy}|${progress?.phase ?? ''}|${progress?.processed ?? ''}`;
}

/** An import uploaded and followed to the end of validation (idle at VALIDATION or REVIEW). */
export interface ValidatedImport {
  id: string;
  /** Follows the session on; the caller closes it. */
  follower: SessionFollower;
  startedAt: number;
  uploadedAt: number;
  /** startedAt + the timeout: every wait of this import ends by then. */
  deadline: number;
  first: TimedEvent;
  read: TimedEvent;
  validated: TimedEvent;
  validationFrom: number;
  confirmMs: number;
  /** When each confirmation and continue was sent and answered (see withResumes). */
  resumes: Resume[];
}

/**
 * Uploads the file and follows it through the read and validation, adding the file's new
 * columns with confirmCustomFields: where an import and the row fixes (bench/cases.ts) start.
 */
export async function driveToValidation(options: {
  url: string;
  token: string;
  upload: PreparedUpload;
  timeoutMs: number;
  onStaged?(sessionId: string): void;
}): Promise<ValidatedImport> {
  const { url, token } = options;
  const startedAt = performance.now();
  const deadline = startedAt + options.timeoutMs;
  const id = await uploadWorkbook(url, token, options.upload, options.timeoutMs);
  const uploadedAt = performance.now();
  const follower = new SessionFollower(url, token, id);
  try {
    const first = await follower.waitFor('the first event', () => true, deadline);
    const read = await follower.waitFor(
      'the end of the read',
      (s) => s.stage !== 'UPLOAD',
      deadline,
    );
    options.onStaged?.(id);
    let validationFrom = read.at;
    let confirmMs = 0;
    const resumes: Resume[] = [];
    if (read.session.stage === 'CUSTOM_FIELDS') {
      const newHeaders = read.session.columns
        .filter((column) => column.status === 'NEW')
        .map((column) => column.header);
      validationFrom = performance.now();
      await mutate(
        url,
        token,
        `mutation($id: ID!, $headers: [String!]!) { confirmCustomFields(input: { sessionId: $id, addToDatabase: $headers }) {
          __typename ... on ImportSession { stage busy } ... on Error { code message } } }`,
        { id, headers: newHeaders },
      );
      const answeredAt = performance.now();
      resumes.push({ sentAt: validationFrom, answeredAt });
      confirmMs = answeredAt - validationFrom;
    }
    const validated = await follower.waitFor(
      'the end of validation',
      (s) => !s.busy && s.stage !== 'UPLOAD' && s.stage !== 'CUSTOM_FIELDS',
      deadline,
    );
    return {
      id,
      follower,
      startedAt,
      uploadedAt,
      deadline,
      first,
      read,
      validated,
      validationFrom,
      confirmMs,
      resumes,
    };
  } catch (error) {
    follower.close();
    throw error;
  }
}

/**
 * Uploads the file and drives every stage to the commit, continuing automatically. A SYNC
 * past the archive limit is acknowledged at REVIEW, after reading its warning.
 */
export async function driveImport(options: {
  url: string;
  token: string;
  upload: PreparedUpload;
  timeoutMs: number;
  onStaged?(sessionId: string): void;
}): Promise<ImportTimings> {
  const { url, token } = options;
  const validation = await driveToValidation(options);
  const { id, follower, startedAt, uploadedAt, deadline, first, read, validated, resumes } =
    validation;
  try {
    const resume = async (send: () => Promise<unknown>) => {
      const sentAt = performance.now();
      await send();
      resumes.push({ sentAt, answeredAt: performance.now() });
    };
    let reviewMs = 0;
    let reviewWindow: [number, number] = [validated.at, validated.at];
    if (validated.session.stage === 'VALIDATION') {
      const from = performance.now();
      await resume(() => continueFrom(url, token, id, 'VALIDATION'));
      const reviewed = await follower.waitFor(
        'the review',
        (s) => s.stage === 'REVIEW' && !s.busy,
        deadline,
      );
      reviewMs = reviewed.at - from;
      reviewWindow = [from, reviewed.at];
    }
    let archiveWarning: ArchiveWarning | null = null;
    if (options.upload.mode === 'SYNC') {
      const data = await graphql<{ importSession: { archiveWarning: ArchiveWarning | null } }>(
        url,
        token,
        ARCHIVE_WARNING,
        { id },
      );
      archiveWarning = data.importSession.archiveWarning;
    }
    const groupsFrom = performance.now();
    await resume(() => continueFrom(url, token, id, 'REVIEW', archiveWarning !== null));
    const grouped = await follower.waitFor(
      'the group assignment',
      (s) => s.stage === 'GROUP_ASSIGNMENT' && !s.busy,
      deadline,
    );
    const commitFrom = performance.now();
    await resume(() => continueFrom(url, token, id, 'GROUP_ASSIGNMENT'));
    const committed = await follower.waitFor(
      'the commit',
      (s) => s.stage === 'COMPLETED',
      deadline,
    );

    const events = follower.events;
    const readEvents = events.filter((event) => event.at <= read.at);
    const readGaps = readEvents
      .slice(1)
      .map((event, index) => event.at - (readEvents[index] as TimedEvent).at);
    const firstProgress = events.find((event) =>
      ['INFLATING', 'READING'].includes(event.session.progress?.phase ?? ''),
    );
    const busyGapMax = longestBusyGap(withResumes(events, resumes), startedAt, () => true);
    const stillGapMax = longestBusyGap(
      events,
      startedAt,
      (a, b) => progressKey(a) !== progressKey(b),
    );
    const repeatedEvents = events
      .slice(1)
      .filter(
        (event, index) => progressKey(event) === progressKey(events[index] as TimedEvent),
      ).length;
    return {
      sessionId: id,
      startedAt,
      endedAt: committed.at,
      stagedAt: read.at,
      totalMs: committed.at - startedAt,
      windows: {
        upload: [startedAt, uploadedAt],
        read: [uploadedAt, read.at],
        validation: [validation.validationFrom, validated.at],
        review: reviewWindow,
        groups: [groupsFrom, grouped.at],
        commit: [commitFrom, committed.at],
      },
      stages: {
        uploadMs: uploadedAt - startedAt,
        firstEventMs: first.at - uploadedAt,
        readMs: read.at - uploadedAt,
        confirmMs: validation.confirmMs,
        validationMs: validated.at - validation.validationFrom,
        reviewMs,
        groupsMs: grouped.at - groupsFrom,
        commitMs: committed.at - commitFrom,
      },
      firstProgressMs: firstProgress ? firstProgress.at - uploadedAt : Number.NaN,
      readGaps,
      busyGapMax,
      stillGapMax,
      repeatedEvents,
      result: committed.session.result,
      rowCount: committed.session.rowCount,
      invalidRowCount: committed.session.invalidRowCount,
      events: events.length,
      archiveWarning,
    };
  } finally {
    follower.close();
  }
}

export interface ImportRunResult {
  first: ImportTimings;
  second: ImportTimings;
  idleRssMb: number;
  peakRssMb: number;
  secondPeakRssMb: number;
  /** Peak RSS in each stage of the first import: which step holds the memory. */
  peakRssByStage: Record<string, number>;
  queryP95IdleMs: number;
  queryP95Ms: number;
  /** The same p95 without the coordinated-omission correction. */
  queryP95RawMs: number;
  queryMaxMs: number;
  querySamples: number;
  /** p95 and max of the small query in each stage of the first import. */
  queryByStage: Record<string, { p95Ms: number; maxMs: number; samples: number }>;
  /** GET /health (one `select 1`, no GraphQL) while idle: the floor of any request here. */
  healthP95IdleMs: number;
  rowsPageP95Ms: number;
  rowsPageP95RawMs: number;
  rowsPageSamples: number;
  rowsPageIdleP95Ms: number;
  /**
   * The client's ImportRows document, idle, paging through the staged session, by page size;
   * beside GET /health sampled in the same loop, so the two compare on one machine state.
   */
  clientRowsP95Ms: Record<(typeof CLIENT_PAGE_SIZES)[number], number>;
  healthP95BesideClientRowsMs: number;
  probeFailures: number;
  /** What the first failed probe request threw; null when none failed. */
  probeFailure: string | null;
}

/** One benchmark run on a running server: idle probes, the import, the unchanged re-import. */
export async function benchmarkImport(options: {
  url: string;
  token: string;
  path: string;
  timeoutMs: number;
  chunkedUpload: boolean;
  memory: { between(from: number, to?: number): number[] };
  log(line: string): void;
}): Promise<ImportRunResult> {
  const { url, token } = options;
  await setUpCompany(url, token);
  // Both requests encoded before the probes start (see prepareUpload).
  const firstUpload = await prepareUpload(options.path, options.chunkedUpload);
  const secondUpload = await prepareUpload(options.path, options.chunkedUpload);
  const health = startProbe(async () => {
    const response = await fetch(`${url}/health`, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    await response.text();
  });
  const query = startProbe(() => graphql(url, token, SMALL_QUERY, {}, PROBE_TIMEOUT_MS));
  let rowsProbe: Probe | null = null;
  try {
    // Warm up, then an idle window: the baseline for latency and memory.
    await sleep(1_000);
    const idleFrom = performance.now();
    await sleep(IDLE_WINDOW_MS);
    const idleTo = performance.now();
    await health.stop();
    const first = await driveImport({
      url,
      token,
      upload: firstUpload,
      timeoutMs: options.timeoutMs,
      onStaged: (id) => {
        rowsProbe = startProbe(() => graphql(url, token, ROWS_PAGE, { id }, PROBE_TIMEOUT_MS));
      },
    });
    const stoppedRowsProbe = rowsProbe as Probe | null;
    await stoppedRowsProbe?.stop();
    options.log(`  import: ${Math.round(first.totalMs)} ms, ${JSON.stringify(first.result)}`);
    // The 50-row page with every row of the session staged, the server otherwise idle.
    const idlePages: number[] = [];
    for (let index = 0; index < IDLE_ROWS_PAGE_SAMPLES; index++) {
      const at = performance.now();
      await graphql(url, token, ROWS_PAGE, { id: first.sessionId }, PROBE_TIMEOUT_MS);
      idlePages.push(performance.now() - at);
      await sleep(20);
    }
    const clientRows = await measureClientRowsPages(url, token, first.sessionId);
    const second = await driveImport({
      url,
      token,
      upload: secondUpload,
      timeoutMs: options.timeoutMs,
    });
    options.log(`  re-import: ${Math.round(second.totalMs)} ms, ${JSON.stringify(second.result)}`);
    const during = query.between(first.startedAt, first.endedAt);
    const rowsDuring = stoppedRowsProbe?.between(first.stagedAt, first.endedAt) ?? [];
    return {
      first,
      second,
      idleRssMb: median(options.memory.between(idleFrom, idleTo)),
      peakRssMb: maximum(options.memory.between(first.startedAt, first.endedAt)),
      secondPeakRssMb: maximum(options.memory.between(second.startedAt, second.endedAt)),
      peakRssByStage: Object.fromEntries(
        Object.entries(first.windows).map(([stage, [from, to]]) => [
          stage,
          maximum(options.memory.between(from, to)),
        ]),
      ),
      queryP95IdleMs: p95(query.between(idleFrom, idleTo)),
      queryP95Ms: p95(during),
      queryP95RawMs: p95(query.rawBetween(first.startedAt, first.endedAt)),
      queryMaxMs: maximum(during),
      querySamples: during.length,
      queryByStage: Object.fromEntries(
        Object.entries(first.windows).map(([stage, [from, to]]) => {
          const samples = query.between(from, to);
          return [stage, { p95Ms: p95(samples), maxMs: maximum(samples), samples: samples.length }];
        }),
      ),
      healthP95IdleMs: p95(health.between(idleFrom, idleTo)),
      rowsPageP95Ms: p95(rowsDuring),
      rowsPageP95RawMs: p95(stoppedRowsProbe?.rawBetween(first.stagedAt, first.endedAt) ?? []),
      rowsPageSamples: stoppedRowsProbe?.rawBetween(first.stagedAt, first.endedAt).length ?? 0,
      rowsPageIdleP95Ms: p95(idlePages),
      clientRowsP95Ms: clientRows.rows,
      healthP95BesideClientRowsMs: clientRows.healthP95Ms,
      probeFailures: query.failures + (stoppedRowsProbe?.failures ?? 0),
      probeFailure: query.firstFailure ?? stoppedRowsProbe?.firstFailure ?? null,
    };
  } finally {
    await (rowsProbe as Probe | null)?.stop();
    await health.stop();
    await query.stop();
  }
}

/**
 * The client's ImportRows at each page size, turn about with GET /health: each loop takes the
 * next page of every size (wrapping at the end of the session), so the pages are spread over
 * the session rather than one cached page.
 */
async function measureClientRowsPages(url: string, token: string, id: string) {
  const timed = async (request: () => Promise<unknown>) => {
    const at = performance.now();
    await request();
    return performance.now() - at;
  };
  const health: number[] = [];
  const samples = new Map<number, number[]>(CLIENT_PAGE_SIZES.map((size) => [size, []]));
  const cursors = new Map<number, string | null>(CLIENT_PAGE_SIZES.map((size) => [size, null]));
  type Page = {
    importSession: { rows: { pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
  };
  for (let index = 0; index < CLIENT_ROWS_SAMPLES; index++) {
    health.push(
      await timed(async () => {
        const response = await fetch(`${url}/health`, {
          signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
        });
        await response.text();
      }),
    );
    for (const size of CLIENT_PAGE_SIZES) {
      let page: Page | null = null;
      const variables = { id, first: size, after: cursors.get(size) ?? null };
      samples.get(size)?.push(
        await timed(async () => {
          page = await graphql<Page>(url, token, CLIENT_ROWS_PAGE, variables, PROBE_TIMEOUT_MS);
        }),
      );
      const info = (page as Page | null)?.importSession.rows.pageInfo;
      cursors.set(size, info?.hasNextPage ? info.endCursor : null);
    }
    await sleep(20);
  }
  return {
    healthP95Ms: p95(health),
    rows: Object.fromEntries(
      CLIENT_PAGE_SIZES.map((size) => [size, p95(samples.get(size) ?? [])]),
    ) as Record<(typeof CLIENT_PAGE_SIZES)[number], number>,
  };
}
