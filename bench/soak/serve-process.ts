// A real `tokenmill serve` process on loopback for the soak and fault harnesses (bin/tokenmill.js,
// port 0): its URL, its logs, its exit, and small readers for /metrics. Never a fake server.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(REPO_ROOT, 'bin', 'tokenmill.js');

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Resolves when the process exits. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything it wrote so far (stdout + stderr, interleaved as received). */
  log(): string;
  /** SIGTERM (or the given signal) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `tokenmill serve --port 0 ...args` and wait for its "listening on URL" line (bounded). */
export async function startServe(
  args: readonly string[],
  opts: { env?: Record<string, string>; startTimeoutMs?: number } = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', ...args], {
    env: { ...process.env, TOKENMILL_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const append = (d: Buffer): void => {
    out = (out + d.toString()).slice(-200_000);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`serve did not start in time:\n${out}`));
    }, opts.startTimeoutMs ?? 120_000);
    const check = (): void => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exit.then((e) => {
      clearTimeout(timer);
      rej(new Error(`serve exited (${e.code ?? e.signal}) before listening:\n${out}`));
    });
  });
  return {
    child,
    url,
    exit,
    log: () => out,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
  };
}

/** Parse Prometheus text into name{labels} -> value (first sample of each name, labels ignored). */
export function promValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && !out.has(m[1]!)) out.set(m[1]!, Number(m[3]));
  }
  return out;
}

export async function readMetrics(url: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const r = await fetch(`${url}/metrics`, { headers });
  if (!r.ok) throw new Error(`GET /metrics: HTTP ${r.status}`);
  return promValues(await r.text());
}

/** Poll until the engine is idle (nothing running or waiting), bounded; returns the last metrics. */
export async function waitIdle(url: string, headers: Record<string, string> = {}, timeoutMs = 120_000): Promise<Map<string, number>> {
  const t0 = Date.now();
  for (;;) {
    const m = await readMetrics(url, headers);
    if ((m.get('tokenmill_num_requests_running') ?? 0) === 0 && (m.get('tokenmill_num_requests_waiting') ?? 0) === 0) return m;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`engine not idle after ${timeoutMs} ms: ${m.get('tokenmill_num_requests_running')} running`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
