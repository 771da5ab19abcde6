import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
/** A new PGlite data directory takes seconds to initialise, more on a busy machine. */
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 15_000;

export interface ServerProcess {
  url: string;
  /** The node process that runs the server (tsx's child), whose memory is sampled. */
  serverPid: number;
  logs(): string;
  /** SIGTERM, then SIGKILL to the whole process group if it has not exited in time. */
  stop(): Promise<void>;
}

/** Every child started and not yet closed: killed on any exit of the bench. */
const running = new Set<ChildProcessWithoutNullStreams>();

function killGroup(child: ChildProcessWithoutNullStreams, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** SIGKILLs what is left; synchronous, so it can run in an 'exit' handler. */
export function killAllServers(): void {
  for (const child of running) killGroup(child, 'SIGKILL');
}

async function parentPid(pid: string): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const match = status && /^PPid:\s+(\d+)/m.exec(status);
  return match ? Number(match[1]) : null;
}

/** tsx runs the script in a node child process of its own: that child is the server. */
async function findChildPid(pid: number): Promise<number | null> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => null);
  const listed = children?.trim().split(/\s+/).filter(Boolean).map(Number);
  if (listed && listed.length > 0) return listed[0] ?? null;
  for (const entry of await readdir('/proc')) {
    if (/^\d+$/.test(entry) && (await parentPid(entry)) === pid) return Number(entry);
  }
  return null;
}

/** Starts `tsx server/main.ts` in its own process group and waits until it listens. */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
  if (!env.REDIS_URL) delete childEnv.REDIS_URL;
  const child = spawn(tsx, ['server/main.ts'], { cwd: repoRoot, env: childEnv, detached: true });
  running.add(child);
  let output = '';
  const append = (chunk: string) => {
    output += chunk;
  };
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  let closed = false;
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => {
      closed = true;
      running.delete(child);
      resolve();
    });
  });
  const stop = async () => {
    if (closed) return;
    killGroup(child, 'SIGTERM');
    await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
    if (!closed) {
      killGroup(child, 'SIGKILL');
      await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
    }
  };

  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let url: string | null = null;
    while (!url) {
      // LOG_LEVEL=warn hides the "listening" line; the first start prints a curl line with
      // the URL to stdout in any case (the database is always new here).
      url =
        /Muster is listening on (http:\/\/\S+)/.exec(output)?.[1] ??
        /curl (http:\/\/\S+)\/graphql/.exec(output)?.[1] ??
        null;
      if (url) break;
      if (closed) throw new Error(`the server exited before listening:\n${output}`);
      if (Date.now() > deadline) {
        throw new Error(`the server did not listen within ${START_TIMEOUT_MS} ms:\n${output}`);
      }
      await sleep(50);
    }
    let serverPid: number | null = null;
    while (serverPid === null) {
      serverPid = await findChildPid(child.pid as number);
      if (serverPid === null && Date.now() > deadline) throw new Error('no server process found');
      if (serverPid === null) await sleep(50);
    }
    return { url, serverPid, logs: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** VmRSS of a process in MB, or null once it is gone. */
export async function residentMb(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const match = status && /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) / 1024 : null;
}

export interface MemorySampler {
  /** Samples taken since `from` (performance.now() time), in MB. */
  between(from: number, to?: number): number[];
  stop(): void;
}

/** Reads the process's VmRSS every `intervalMs`. */
export function sampleMemory(pid: number, intervalMs = 100): MemorySampler {
  const samples: { at: number; mb: number }[] = [];
  const timer = setInterval(() => {
    const at = performance.now();
    void residentMb(pid).then((mb) => {
      if (mb !== null) samples.push({ at, mb });
    });
  }, intervalMs);
  return {
    between: (from, to = Number.POSITIVE_INFINITY) =>
      samples.filter((sample) => sample.at >= from && sample.at <= to).map((sample) => sample.mb),
    stop: () => clearInterval(timer),
  };
}
