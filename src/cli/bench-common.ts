// Shared by the bench subcommands: list parsing (--concurrency 1,8,32, --shapes 128/128,...),
// writing a run file (bench/results/ by default, or --out FILE|DIR), the environment fingerprint
// (metrics/fingerprint.ts) and a cli-progress bar on stderr.
import cliProgress from 'cli-progress';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { BENCH_RECORD_SCHEMA, recordFileName, type BenchRecord, type BenchRun } from '../metrics/bench/bench-record.js';
import { TokenmillError } from '../util/errors.js';
import type { BenchShape } from './bench-engine.js';
import { tokenmillEnv } from './env.js';

/** The shapes the issue names: 128/128, 512/256, 1000/1000, 2048/2048. */
export const SHAPE_PRESETS: readonly BenchShape[] = [
  { inLen: 128, outLen: 128 },
  { inLen: 512, outLen: 256 },
  { inLen: 1000, outLen: 1000 },
  { inLen: 2048, outLen: 2048 },
];

export function parseIntList(raw: string, flag: string): number[] {
  const xs = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isSafeInteger(x) || x < 1))
    throw new TokenmillError('invalid_argument', `${flag} '${raw}': expected positive integers, e.g. 1,8,32`, { param: flag });
  return xs;
}

export function parseFloatList(raw: string, flag: string): number[] {
  const xs = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => (s === 'inf' ? Infinity : Number(s)));
  if (xs.length === 0 || xs.some((x) => !(x > 0)))
    throw new TokenmillError('invalid_argument', `${flag} '${raw}': expected positive numbers (or inf), e.g. 1,2,4`, { param: flag });
  return xs;
}

/** '128/128,512/256' or 'all' (the four presets). */
export function parseShapes(raw: string): BenchShape[] {
  if (raw.trim() === 'all') return [...SHAPE_PRESETS];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const m = /^(\d+)\/(\d+)$/.exec(s);
      const inLen = m ? Number(m[1]) : 0;
      const outLen = m ? Number(m[2]) : 0;
      if (!(inLen > 0 && outLen > 0))
        throw new TokenmillError('invalid_argument', `--shapes '${s}': expected IN/OUT token counts, e.g. 128/128`, { param: '--shapes' });
      return { inLen, outLen };
    });
}

/** --shapes unless --in/--out are given (then that single shape). */
export function resolveShapes(o: { shapes?: string; in?: number; out?: number }): BenchShape[] {
  if (o.in !== undefined || o.out !== undefined) return [{ inLen: o.in ?? 128, outLen: o.out ?? 128 }];
  return parseShapes(o.shapes ?? '128/128');
}

/** Write a run file; `out` is a .json file or a directory (default bench/results). Returns the path. */
export function writeRun(
  records: readonly BenchRecord[],
  o: { out?: string; kind: string; label: string; command: string; loadStart: number[] },
): string {
  const date = new Date();
  const commit = records[0]?.commit ?? 'unknown';
  const run: BenchRun = {
    schema: BENCH_RECORD_SCHEMA,
    date: date.toISOString(),
    command: o.command,
    loadAvg: { start: o.loadStart, end: loadavg() },
    records,
  };
  const target = o.out ?? 'bench/results';
  const file = target.endsWith('.json') ? resolve(target) : join(resolve(target), recordFileName(o.kind, o.label, date, commit));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(run, null, 2)}\n`);
  return file;
}

/** TOKENMILL_* variables set for this run (secrets left out), recorded next to the fingerprint. */
/**
 * The environment fingerprint, or a minimal one (and why) when collecting it fails; with the
 * TOKENMILL_* variables in effect (`tokenmillEnv`, outside fingerprintId).
 */
export async function fingerprintOrMinimal(modelDir: string | undefined): Promise<unknown> {
  try {
    const { environmentFingerprint } = await import('../metrics/fingerprint.js');
    return await environmentFingerprint({ ...(modelDir !== undefined ? { modelDir } : {}), env: tokenmillEnv() });
  } catch (e) {
    return {
      minimal: true,
      reason: (e as Error).message,
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      tokenmillEnv: tokenmillEnv(),
    };
  }
}

export function commandLine(): string {
  return ['tokenmill', ...process.argv.slice(2)].join(' ');
}

export interface Progress {
  tick(): void;
  stop(): void;
}

/** A progress bar on stderr (only on a TTY; silent otherwise). */
export function progressBar(label: string, total: number): Progress {
  if (process.stderr.isTTY !== true) return { tick: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} requests | {duration_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { tick: () => bar.increment(), stop: () => bar.stop() };
}

/** One line per record for the terminal. */
export function formatRecordLine(r: BenchRecord): string {
  const f = (v: number | null, d = 1): string => (v === null ? '-' : v.toFixed(d));
  const sp = r.tokPerSSpread;
  const spreadTxt = sp !== null && sp.runs.length > 1 ? ` [${f(sp.min)}..${f(sp.max)}]` : '';
  const cost = r.usdPer1MTok === null ? '' : `, $${r.usdPer1MTok.toPrecision(3)}/1M tok at $${r.usdPerHour}/h`;
  const bw = r.gbPerS === null ? '' : `, ${f(r.gbPerS, 2)} GB/s${r.pctPeak === null ? '' : ` (${f(r.pctPeak)}% of peak)`}`;
  const errs = r.errors.total > 0 ? `, errors ${JSON.stringify(r.errors.byClass)}` : '';
  const rate = r.requestRate === null ? '' : ` rate=${r.requestRate}/s`;
  return (
    `${r.engine} ${r.model} ${r.inLen}/${r.outLen} c=${r.concurrency}${rate}: ${f(r.tokPerS)} tok/s${spreadTxt}, TTFT p50 ` +
    `${f(r.ttftMs.p50)} p99 ${f(r.ttftMs.p99)} ms, ` +
    `ITL p50 ${f(r.itlMs.p50, 2)} p99 ${f(r.itlMs.p99, 2)} ms${bw}${cost}${errs}`
  );
}

/** Commit and dirty flag from an environment fingerprint (or 'unknown' / null). */
export function gitCommitOf(fp: unknown): string {
  const c = (fp as { tokenmill?: { gitCommit?: string } } | null)?.tokenmill?.gitCommit;
  return typeof c === 'string' ? c : 'unknown';
}

export function gitDirtyOf(fp: unknown): boolean | null {
  const d = (fp as { tokenmill?: { gitDirty?: boolean | null } } | null)?.tokenmill?.gitDirty;
  return typeof d === 'boolean' ? d : null;
}
