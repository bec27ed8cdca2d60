// Drives the mutation suite: writes each seeded mutant, hands it to a child process (mutant-child.ts)
// and classifies the outcome under a per-mutant time bound and a resident-memory bound. A child that
// crashes, hangs or balloons is killed, the mutant recorded, and a fresh child started for the rest.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildReply } from './mutant-child.js';
import { prepareMutant, type Bases, type Format } from './formats.js';

export type Verdict = 'loaded' | 'typed' | 'request_error' | 'untyped' | 'unnamed' | 'crash' | 'hang' | 'oom';
/** Verdicts that are bugs in the loaders. */
export const BUG_VERDICTS: readonly Verdict[] = ['untyped', 'unnamed', 'crash', 'hang', 'oom'];

export interface MutantResult {
  readonly format: Format;
  readonly index: number;
  readonly file: string;
  readonly what: string;
  readonly verdict: Verdict;
  readonly stage?: string;
  readonly code?: string;
  readonly message?: string;
  readonly ms: number;
}

export interface RunMutantsOptions {
  readonly bases: Bases;
  readonly format: Format;
  readonly count: number;
  readonly seed: number;
  readonly workDir: string;
  /** Per-mutant bound (default 30 s: a loaded 2-core machine, plus template timeouts). */
  readonly timeoutMs?: number;
  /** Child resident-set bound (default 1.5 GiB): a lying size field must not be believed. */
  readonly maxRssBytes?: number;
  readonly onResult?: (r: MutantResult) => void;
}

const CHILD = fileURLToPath(new URL('./mutant-child.ts', import.meta.url));
const PAGE = 4096;

/** Per-request errors (a template that loops, fails or renders past the context): the server answers them, the load is fine. */
const REQUEST_CODES = new Set(['chat_template_error', 'chat_template_timeout', 'chat_template_missing', 'context_length_exceeded']);

class Child {
  readonly proc: ChildProcess;
  stderrTail = '';
  private waiter: ((r: ChildReply | { exit: string }) => void) | null = null;
  readonly ready: Promise<void>;

  constructor() {
    this.proc = spawn(process.execPath, ['--import', 'tsx', '--max-old-space-size=768', CHILD], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, TOKENMILL_LOG_LEVEL: 'error' },
    });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-4000);
    });
    this.ready = new Promise((resolve, reject) => {
      this.waiter = (r) => ('exit' in r ? reject(new Error(`mutant child failed to start: ${r.exit}\n${this.stderrTail}`)) : resolve());
    });
    this.proc.on('message', (m: ChildReply) => {
      const w = this.waiter;
      this.waiter = null;
      w?.(m);
    });
    this.proc.on('exit', (code, sig) => {
      const w = this.waiter;
      this.waiter = null;
      w?.({ exit: `exit ${code ?? ''}${sig ?? ''}` });
    });
  }

  rssBytes(): number {
    try {
      return Number(readFileSync(`/proc/${this.proc.pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
    } catch {
      return 0; // not Linux, or already gone
    }
  }

  run(
    id: number,
    job: unknown,
    timeoutMs: number,
    maxRss: number,
  ): Promise<ChildReply | { exit: string } | { hang: true } | { oom: number }> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ hang: true }), timeoutMs);
      const poll = setInterval(() => {
        const rss = this.rssBytes();
        if (rss > maxRss) done({ oom: rss });
      }, 100);
      const done = (r: ChildReply | { exit: string } | { hang: true } | { oom: number }): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.waiter = null;
        resolve(r);
      };
      this.waiter = done;
      this.proc.send({ id, job });
    });
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

function classify(reply: ChildReply, file: string): { verdict: Verdict; code?: string; message?: string; stage: string } {
  const base = { stage: reply.stage, code: reply.code, message: reply.message };
  if (reply.ok) return { ...base, verdict: 'loaded' };
  if (!reply.typed || reply.code === 'internal_error') return { ...base, verdict: 'untyped', message: reply.stack ?? reply.message };
  if (REQUEST_CODES.has(reply.code!)) return { ...base, verdict: 'request_error' };
  const named = (reply.message ?? '').includes(file) || (reply.file !== undefined && basename(reply.file) === file);
  return { ...base, verdict: named ? 'typed' : 'unnamed' };
}

/** Run count mutants of one format; returns every result (the caller asserts on the verdicts). */
export async function runMutants(o: RunMutantsOptions): Promise<MutantResult[]> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const maxRss = o.maxRssBytes ?? 1.5 * 2 ** 30;
  const results: MutantResult[] = [];
  let child: Child | null = null;
  try {
    for (let i = 0; i < o.count; i++) {
      if (child === null) {
        child = new Child();
        await child.ready;
      }
      const dir = join(o.workDir, `${o.format}-${i}`);
      const m = prepareMutant(o.bases, o.format, o.seed, i, dir);
      const t0 = performance.now();
      const r = await child.run(i + 1, m.job, timeoutMs, maxRss);
      const ms = Math.round(performance.now() - t0);
      let out: MutantResult;
      if ('id' in r) out = { format: o.format, index: i, file: m.file, what: m.what, ms, ...classify(r, m.file) };
      else {
        const verdict: Verdict = 'hang' in r ? 'hang' : 'oom' in r ? 'oom' : 'crash';
        const message =
          'oom' in r
            ? `resident set ${(r.oom / 2 ** 20).toFixed(0)} MiB`
            : 'exit' in r
              ? `${r.exit}\n${child.stderrTail}`
              : `no answer in ${timeoutMs} ms`;
        out = { format: o.format, index: i, file: m.file, what: m.what, ms, verdict, message };
        child.kill();
        child = null;
      }
      results.push(out);
      o.onResult?.(out);
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    child?.kill();
  }
  return results;
}

/** Counts per verdict, e.g. { typed: 41, loaded: 9 }. */
export function tally(results: readonly MutantResult[]): Partial<Record<Verdict, number>> {
  const t: Partial<Record<Verdict, number>> = {};
  for (const r of results) t[r.verdict] = (t[r.verdict] ?? 0) + 1;
  return t;
}
