import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * Real server processes for tests: `node --import tsx server/main.ts` (as `npm start` runs it)
 * on an ephemeral port, stopped with a signal. Each server gets a process group of its own
 * (`detached`): a SIGKILL goes to the whole group, other signals to the server.
 */

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
const run = promisify(execFile);

/** How long a start may take: a new PGlite data directory takes about 10 s, more when busy. */
const DEFAULT_START_TIMEOUT_MS = 45_000;
/** How long kill() waits for the exit before it SIGKILLs the group and throws. */
const DEFAULT_STOP_TIMEOUT_MS = 15_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  name: string;
  /** The server's process id (with `npmStart`, npm's). */
  pid: number;
  /** "http://127.0.0.1:<port>", from the "Muster is listening on" log line. */
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** What it wrote to stdout alone (the bootstrap token goes there, the logs to stderr). */
  stdout(): string;
  /** Waits (bounded) until stdout matches; returns all of stdout. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves once the server exited and its pipes closed. */
  exited: Promise<Exit>;
  /**
   * Sends the signal (SIGKILL to the process group, anything else to the server) and waits for the
   * exit; after `timeoutMs` it SIGKILLs the group and throws.
   */
  kill(signal: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** False once the process exited. */
  isRunning(): boolean;
  /**
   * SIGSTOPs (pause) or SIGCONTs (resume) the whole group: a paused server claims no work and
   * answers nothing, as if its machine froze. A SIGKILL still ends it.
   */
  pause(): void;
  resume(): void;
  /** Whether `pid` (e.g. from an import worker's lease owner) is this server or in its group. */
  runs(pid: number): Promise<boolean>;
  /** The processes still in its group (a server a launcher left behind would be one). */
  processesInGroup(): Promise<number[]>;
  /** A GraphQL request over HTTP (JSON), bounded at 15 s. */
  graphql(
    token: string,
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<{ data?: any; errors?: any[] }>;
}

/** Every child started, until it closed: killAllServerProcesses() kills what is left. */
const running = new Map<ChildProcessWithoutNullStreams, Promise<Exit>>();

/** Sends a signal to the server's process group unless it is gone. */
function signalGroup(child: ChildProcessWithoutNullStreams, signal: NodeJS.Signals): void {
  if (child.pid === undefined || !running.has(child)) return;
  try {
    process.kill(-child.pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/**
 * The child's environment: the test run's, with PORT=0 on 127.0.0.1 and LOG_LEVEL=info, then
 * `extra`. DATABASE_URL, REDIS_URL and BOOTSTRAP_ADMIN_TOKEN are the child's only when given:
 * never inherited.
 */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ...extra,
  };
  if (!extra.DATABASE_URL) delete env.DATABASE_URL;
  if (!extra.REDIS_URL) delete env.REDIS_URL;
  if (!extra.BOOTSTRAP_ADMIN_TOKEN) delete env.BOOTSTRAP_ADMIN_TOKEN;
  return env;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the admin CLI (`tsx server/cli/admin.ts <args>`) as an operator would, with `childEnv`:
 * on the DATABASE_URL of `extra`, else the embedded database in its DATA_DIR, never one
 * inherited from the test run. Never throws on a non-zero exit.
 */
export function runAdminCli(args: string[], extra: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      tsx,
      ['server/cli/admin.ts', ...args],
      { cwd: repoRoot, env: childEnv(extra), timeout: 60_000 },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

/** Starts `node --import tsx server/main.ts` and waits for its "Muster is listening on <url>" log line. */
export async function startServerProcess(
  name: string,
  env: Record<string, string>,
  options: { startTimeoutMs?: number; npmStart?: boolean } = {},
): Promise<ServerProcess> {
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  // Node runs the server itself, with tsx as its loader: tsx's CLI would run it in a child and
  // relay signals, and when the child had not answered its relay within 30 ms (a busy machine),
  // it SIGKILLed it and exited 143 instead of letting it shut down. With `npmStart`, the child
  // is `npm start` instead, and signals other than SIGKILL go to npm, as a process manager's.
  const child = options.npmStart
    ? spawn('npm', ['start'], { cwd: repoRoot, env: childEnv(env), detached: true })
    : spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
        cwd: repoRoot,
        env: childEnv(env),
        detached: true,
      });
  let output = '';
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const waitForStdout = async (pattern: RegExp, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(stdout)) {
      if (Date.now() > deadline)
        throw new Error(`${name}: stdout never matched ${pattern}:\n${stdout}`);
      await sleep(50);
    }
    return stdout;
  };
  const exited = new Promise<Exit>((resolve) => {
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  running.set(child, exited);
  let exit: Exit | null = null;
  void exited.then((value) => {
    exit = value;
  });

  const kill = async (signal: NodeJS.Signals, timeoutMs = DEFAULT_STOP_TIMEOUT_MS) => {
    if (signal === 'SIGKILL') signalGroup(child, 'SIGKILL');
    else if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const result = await Promise.race([exited, sleep(timeoutMs).then(() => null)]);
    if (result) return result;
    signalGroup(child, 'SIGKILL');
    throw new Error(`${name} did not exit within ${timeoutMs} ms of ${signal}:\n${output}`);
  };

  const runs = async (pid: number) => {
    if (pid === child.pid) return true;
    try {
      const { stdout } = await run('ps', ['-o', 'pgid=', '-p', String(pid)]);
      return Number(stdout.trim()) === child.pid;
    } catch {
      return false; // no such process (any more)
    }
  };

  const processesInGroup = async () => {
    const { stdout } = await run('ps', ['-e', '-o', 'pid=,pgid=']);
    return stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number))
      .filter(([pid, pgid]) => pgid === child.pid && pid !== undefined)
      .map(([pid]) => pid as number);
  };

  const graphql = async (token: string, query: string, variables: Record<string, unknown> = {}) => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(15_000),
    });
    return (await response.json()) as { data?: any; errors?: any[] };
  };

  const deadline = Date.now() + startTimeoutMs;
  let url = '';
  for (;;) {
    const match = /Muster is listening on (http:\/\/\S+)/.exec(output);
    if (match?.[1]) {
      url = match[1];
      return {
        name,
        pid: child.pid as number,
        url,
        logs: () => output,
        stdout: () => stdout,
        waitForStdout,
        exited,
        kill,
        isRunning: () => exit === null,
        pause: () => signalGroup(child, 'SIGSTOP'),
        resume: () => signalGroup(child, 'SIGCONT'),
        runs,
        processesInGroup,
        graphql,
      };
    }
    if (exit)
      throw new Error(`${name} exited (${JSON.stringify(exit)}) before listening:\n${output}`);
    if (Date.now() > deadline) {
      signalGroup(child, 'SIGKILL');
      throw new Error(`${name} did not listen within ${startTimeoutMs} ms:\n${output}`);
    }
    await sleep(50);
  }
}

/** For afterAll: SIGKILLs every server process still running and waits (bounded) for each. */
export async function killAllServerProcesses(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
  for (const [child, exited] of running) {
    signalGroup(child, 'SIGKILL');
    await Promise.race([exited, sleep(timeoutMs)]);
  }
}
