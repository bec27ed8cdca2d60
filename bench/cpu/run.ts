// CPU end-to-end bench (`npm run bench:cpu`): decode and prefill tok/s with 1 and 2 threads for
// stories260K (real weights, converted from ../shared) and the stories15M / stories110M shapes
// (seeded random f32 weights), 128-token prompt, median of 5 with min/max, peak RSS vs weight
// bytes. Each (model, threads) runs in its own process (bench/cpu/measure.ts). Writes
// bench/results/cpu-<date>-<sha>.json. Options: --models a,b --threads 1,2 --reps 5 --quick
// Quantized section (bench/cpu/quant.ts, tokenmill vs llama.cpp on the same GGUF files): --quant-models
// stories110M,llama-3.2-1B --quant-types q8_0,q4_k_m --quant-streams 32 (0: no multi-stream row), or --no-quant.
// --isas avx512,avx2 runs the f32 rows once per forced kernel ISA (default: the best this CPU runs).
// Every row names its ISA and puts its decode GB/s (weight bytes x tok/s) next to the machine's read
// bandwidth at that thread count, from the addon's own probe (a 1 GiB sum, median of 5), before and after.
// Then f32 vs int8 greedy agreement over 64 steps per model (bench/cpu/int8-agreement.ts; --no-agreement skips).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { convertLlama2c } from '../../src/model/convert/llama2c.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { fingerprintOrMinimal } from '../../src/cli/bench-common.js';
import { measureReadBandwidth, pctOf } from './read-bandwidth.js';
import { measureInt8Agreement, type Int8Agreement } from './int8-agreement.js';
import type { GgufQuantOption } from '../../src/model/convert/ggml-mixture.js';
import { runQuantSection } from './quant.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const quick = process.argv.includes('--quick');
const reps = Number(arg('reps', quick ? '2' : '5'));
const threadList = arg('threads', '1,2').split(',').map(Number);
const modelList = arg('models', 'stories260K,stories15M,stories110M').split(',');
const isaList = arg('isas', '').split(',');
const promptLen = 128;
const OUT = resolve('bench/out');
const SHARED = resolve(process.env.TOKENMILL_SHARED ?? '../shared', 'models', 'stories260K');

/** Decode targets in tok/s (issue 2: llama.cpp on this machine x 1.2), by model and threads. */
const TARGETS: Record<string, Record<number, number>> = {
  stories260K: { 1: 1860 },
  stories15M: { 1: 324, 2: 396 },
  stories110M: { 1: 36, 2: 60 },
};
const GEN: Record<string, number> = { stories260K: 256, stories15M: 128, stories110M: 48 };

function prepare(name: string): string {
  const dir = join(OUT, name);
  if (existsSync(join(dir, 'config.json'))) return dir;
  mkdirSync(OUT, { recursive: true });
  if (name === 'stories260K') {
    if (!existsSync(join(SHARED, 'stories260K.bin'))) throw new Error(`stories260K needs ${SHARED}/stories260K.bin`);
    convertLlama2c(join(SHARED, 'stories260K.bin'), join(SHARED, 'tok512.bin'), dir);
  } else {
    const preset = MODEL_PRESETS[name];
    if (!preset) throw new Error(`unknown model ${name}`);
    writeRandomModel(dir, preset.config, { seed: 0, dtype: 'f32', tokenizer: false });
  }
  return dir;
}

function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 10) / 10;
  return { median: r(s[Math.floor(s.length / 2)]!), min: r(s[0]!), max: r(s[s.length - 1]!) };
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** Read bandwidth now (GB/s; the VM is shared): the addon's 1 GiB sum, median of 5 (bench/cpu/read-bandwidth.ts). */
function probeBandwidth(threads: number): number {
  return measureReadBandwidth(threads, { sizeBytes: quick ? 256 * 2 ** 20 : 2 ** 30, reps: 5 }).median;
}

const sha = git(['rev-parse', 'HEAD']);
const dirty = git(['status', '--porcelain', '--', 'native', 'src/runtime', 'binding.gyp']) !== '';
const loadAvgStart = loadavg();
const bandwidthStartGbPerS: Record<number, number> = { 1: probeBandwidth(1), 2: probeBandwidth(2) };
console.log(
  `bench: read bandwidth now (1 GiB sum, median of 5): ${bandwidthStartGbPerS[1]} GB/s (1 thread), ${bandwidthStartGbPerS[2]} ` +
    `GB/s (2 threads); load ${loadAvgStart.map((x) => x.toFixed(1)).join(' ')}`,
);
const records: Record<string, unknown>[] = [];
for (const name of modelList) {
  const dir = prepare(name);
  for (const isaForced of isaList)
    for (const threads of threadList) {
      const gen = quick ? Math.min(32, GEN[name] ?? 64) : (GEN[name] ?? 64);
      const args = [
        '--import',
        'tsx',
        'bench/cpu/measure.ts',
        '--model',
        dir,
        '--threads',
        String(threads),
        '--prompt',
        String(promptLen),
        '--gen',
        String(gen),
        '--reps',
        String(reps),
        ...(isaForced !== '' ? ['--isa', isaForced] : []),
      ];
      const res = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (res.status !== 0) {
        console.error(`bench: ${name} threads=${threads} failed:\n${res.stderr}`);
        process.exitCode = 1;
        continue;
      }
      const m = JSON.parse(res.stdout.trim().split('\n').pop()!) as {
        isa: string;
        decodeTokPerS: number[];
        prefillTokPerS: number[];
        weightBytes: number;
        baselineRssBytes: number;
        peakRssBytes: number;
      };
      const decode = stats(m.decodeTokPerS);
      const prefill = stats(m.prefillTokPerS);
      const target = TARGETS[name]?.[threads] ?? null;
      const rssOverWeights = (m.peakRssBytes - m.baselineRssBytes) / m.weightBytes;
      const rec = {
        model: name,
        threads,
        isa: m.isa,
        promptLen,
        genLen: gen,
        reps,
        decodeTokPerS: decode,
        prefillTokPerS: prefill,
        decodeTarget: target,
        decodeGbPerS: Math.round((decode.median * m.weightBytes) / 1e8) / 10,
        readGbPerS: bandwidthStartGbPerS[threads] ?? null,
        pctOfReadBandwidth: pctOf((decode.median * m.weightBytes) / 1e9, bandwidthStartGbPerS[threads]),
        weightBytes: m.weightBytes,
        baselineRssBytes: m.baselineRssBytes,
        peakRssBytes: m.peakRssBytes,
        rssAboveBaselineOverWeights: Math.round(rssOverWeights * 100) / 100,
        command: `node ${args.join(' ')}`,
      };
      records.push(rec);
      const mark = target === null ? '' : decode.median >= target ? `  (target ${target}: met)` : `  (target ${target}: MISSED)`;
      console.log(
        `${name.padEnd(12)} threads=${threads} ${m.isa}: decode ${decode.median} tok/s [${decode.min}..${decode.max}]${mark}; ` +
          `${rec.decodeGbPerS} GB/s = ${rec.pctOfReadBandwidth ?? '?'}% of read ${rec.readGbPerS ?? '?'} GB/s; ` +
          `prefill ${prefill.median} tok/s [${prefill.min}..${prefill.max}]; RSS ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB ` +
          `(baseline ${(m.baselineRssBytes / 2 ** 20).toFixed(0)}, weights ${(m.weightBytes / 2 ** 20).toFixed(0)}, x` +
          `${rec.rssAboveBaselineOverWeights})`,
      );
    }
}

const quant = process.argv.includes('--no-quant')
  ? []
  : runQuantSection({
      models: arg('quant-models', 'stories110M,llama-3.2-1B').split(','),
      types: arg('quant-types', 'q8_0,q4_k_m').split(',') as GgufQuantOption[],
      threads: threadList,
      reps,
      gen: quick ? 16 : 64,
      bandwidthGbPerS: bandwidthStartGbPerS,
      streams: Number(arg('quant-streams', '32')),
    });

// f32 vs int8 greedy agreement over 64 steps per f32 model (--no-agreement skips it).
const int8Agreement: Int8Agreement[] = [];
if (!process.argv.includes('--no-agreement')) {
  for (const name of modelList) {
    const a = measureInt8Agreement(name, prepare(name));
    int8Agreement.push(a);
    console.log(`agreement ${name}: f32 vs int8 greedy ${a.matches}/${a.steps} positions equal, first flip after ${a.commonPrefix} tokens`);
  }
}

const result = {
  bench: 'cpu-e2e',
  date: new Date().toISOString(),
  commit: sha,
  dirty,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  numCpus: cpus().length,
  totalMemBytes: totalmem(),
  node: process.version,
  loadAvgStart,
  loadAvgEnd: loadavg(),
  bandwidthProbe: 'addon probeReadBandwidth: sum of a pre-touched buffer with 16-byte loads, median of 5 reps',
  bandwidthStartGbPerS,
  bandwidthEndGbPerS: { 1: probeBandwidth(1), 2: probeBandwidth(2) },
  fingerprint: await fingerprintOrMinimal(undefined),
  command: `node --import tsx bench/cpu/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
  records,
  int8Agreement,
  quant,
};
mkdirSync('bench/results', { recursive: true });
const file = join('bench/results', `cpu-${result.date.slice(0, 16).replace(/[:T]/g, '-')}-${sha.slice(0, 8)}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `bench: wrote ${file} (load average ${loadAvgStart.map((x) => x.toFixed(1)).join(' ')} -> ` +
    `${result.loadAvgEnd.map((x) => x.toFixed(1)).join(' ')})`,
);
