import type { ImportStage } from './gql/graphql.js';
import type { ImportSession } from './import-users.js';

const STAGE_NAMES: Record<ImportStage, string> = {
  UPLOAD: 'Reading the file',
  CUSTOM_FIELDS: 'New columns',
  VALIDATION: 'Validation',
  REVIEW: 'Review',
  GROUP_ASSIGNMENT: 'Group assignment',
  COMPLETED: 'Completed',
  CANCELLED: 'Cancelled',
  FAILED: 'Failed',
  REVERTED: 'Reverted',
};

const number = new Intl.NumberFormat('en-US');

/** "reading 1,200 of 5,000 rows", or "" when the session is idle. */
export function describeWork(session: ImportSession): string {
  if (!session.busy) return '';
  const { phase, processed, total } = session.progress;
  const unit = phase === 'INFLATING' ? 'bytes' : 'rows';
  const verb = phase.toLowerCase();
  if (phase === 'QUEUED') return 'queued';
  if (total !== null)
    return `${verb} ${number.format(processed)} of ${number.format(total)} ${unit}`;
  return processed > 0 ? `${verb} ${number.format(processed)} ${unit}` : verb;
}

export function stageName(stage: ImportStage): string {
  return STAGE_NAMES[stage];
}

export interface ProgressDisplay {
  update(session: ImportSession): void;
  /** Clears a live bar so that what follows starts on a clean line. */
  finish(): void;
}

/**
 * On a terminal: one line redrawn in place with a bar. Elsewhere (CI logs, pipes): a plain
 * line whenever the stage, the busy state or the step changes, and every few seconds while a
 * long step runs.
 */
export function createProgressDisplay(stream: NodeJS.WriteStream): ProgressDisplay {
  return stream.isTTY ? liveBar(stream) : plainLines(stream);
}

/** In plain mode, a step that keeps running gets a line this often. */
const PLAIN_INTERVAL_MS = 5_000;

function plainLines(stream: NodeJS.WriteStream): ProgressDisplay {
  let last = '';
  let lastLine = 0;
  return {
    update(session) {
      const key = `${session.stage}|${session.busy}|${session.progress.phase}`;
      const now = Date.now();
      if (key === last && (!session.busy || now - lastLine < PLAIN_INTERVAL_MS)) return;
      last = key;
      lastLine = now;
      const work = describeWork(session);
      stream.write(`${stageName(session.stage)}${work ? `: ${work}` : ''}\n`);
    },
    finish() {},
  };
}

function liveBar(stream: NodeJS.WriteStream): ProgressDisplay {
  let drawn = false;
  let lastStage: ImportStage | null = null;
  let lastDraw = 0;
  const clear = () => {
    if (drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    update(session) {
      if (lastStage && session.stage !== lastStage) {
        // Keep each finished stage on a line of its own.
        clear();
        stream.write(`✔ ${stageName(lastStage)}\n`);
      }
      lastStage = session.stage;
      const now = Date.now();
      if (session.busy && now - lastDraw < 80) return;
      lastDraw = now;
      const percent = session.busy ? session.progress.percent : 100;
      const width = Math.max(10, Math.min(30, (stream.columns || 80) - 60));
      const filled = percent === null ? 0 : Math.round((width * Math.min(percent, 100)) / 100);
      const bar = `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
      const label = percent === null ? '    ' : `${String(Math.floor(percent)).padStart(3)}%`;
      const work = describeWork(session);
      const line = `${bar} ${label} ${stageName(session.stage)}${work ? ` · ${work}` : ''}`;
      clear();
      // Never wider than the terminal: a wrapped line could not be redrawn in place.
      stream.write(line.slice(0, Math.max(1, (stream.columns || 80) - 1)));
      drawn = true;
    },
    finish: clear,
  };
}
