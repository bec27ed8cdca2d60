// CPU comparison on this machine (BENCHMARKS.md): tokenmill (`bench engine` in-process) vs llama.cpp
// (node-llama-cpp's prebuilt CPU binary, bench/peers/llama-cpp.ts) on the same weights: stories260K
// (real, converted from ../shared with convert llama2c) and the stories15M shape (seeded random f32),
// each exported to GGUF by convertToGguf. Same shapes, seeded prompts and concurrency; one run file.
// Reps alternate engines (tokenmill, llama.cpp, tokenmill, ...) so a shared machine's load swings hit
// both alike; each point reports the median rep with min/max over reps.
//   node --import tsx bench/engine/compare-cpu.ts [--models stories260K,stories15M] [--threads 1]
//     [--shapes 128/128] [--concurrency 1,8,32] [--reps 3] [--usd-per-hour 0.1] [--output bench/results]
import { existsSync, mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchEngine } from '../../src/cli/bench.js';
import { commandLine, fingerprintOrMinimal, formatRecordLine, gitCommitOf, gitDirtyOf, parseIntList, parseShapes, writeRun } from '../../src/cli/bench-common.js';
import { defaultNumRequests } from '../../src/cli/bench-engine.js';
import type { BenchRecord } from '../../src/metrics/bench/bench-record.js';
import { spread } from '../../src/metrics/bench/percentiles.js';
import { bytesPerDecodeStep } from '../../src/metrics/bench/bench-record.js';
import { measureHostCopyGbPerS } from '../../src/metrics/bench/device-probes.js';
import { weightBytes, kvBytesPerToken } from '../../src/metrics/planner.js';
import { loadModelConfig } from '../../src/model/config.js';
import { convertLlama2c } from '../../src/model/convert/llama2c.js';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadNodeLlamaCpp, runLlamaCppPeer } from '../peers/llama-cpp.js';

const { values } = parseArgs({ options: {
  models: { type: 'string', default: 'stories260K,stories15M' }, threads: { type: 'string', default: '1' }, shapes: { type: 'string', default: '128/128' },
  concurrency: { type: 'string', default: '1,8,32' }, reps: { type: 'string', default: '3' }, 'usd-per-hour': { type: 'string', default: '0.1' },
  output: { type: 'string', default: 'bench/results' }, 'skip-peer': { type: 'boolean', default: false },
} });
const OUT = resolve('bench/out/compare');
const SHARED = resolve(process.env.TOKENMILL_SHARED ?? '../shared', 'models', 'stories260K');
const threads = Number(values.threads);
const shapes = parseShapes(values.shapes!);
const concurrency = parseIntList(values.concurrency!, '--concurrency');
const reps = Number(values.reps);
const usdPerHour = Number(values['usd-per-hour']);

function prepare(name: string): { dir: string; gguf: string; label: string } {
  const dir = join(OUT, name);
  const gguf = join(dir, 'model.gguf');
  if (!existsSync(join(dir, 'config.json'))) {
    mkdirSync(OUT, { recursive: true });
    if (name === 'stories260K') convertLlama2c(join(SHARED, 'stories260K.bin'), join(SHARED, 'tok512.bin'), dir);
    else writeRandomModel(dir, MODEL_PRESETS[name]!.config, { seed: 0, dtype: 'f32', tokenizer: true });
  }
  if (!existsSync(gguf)) convertToGguf(dir, gguf, { dtype: 'f32' });
  return { dir, gguf, label: name === 'stories260K' ? 'stories260K' : `${name} (random f32)` };
}

const loadStart = loadavg();
const peakGbPerS = measureHostCopyGbPerS();
const peakSource = 'measured single-thread host copy, read+write bytes';
console.log(`compare-cpu: host copy bandwidth ${peakGbPerS.toFixed(1)} GB/s; load average ${loadStart.map((x) => x.toFixed(1)).join(' ')}`);
const { nlc, reason } = values['skip-peer'] ? { nlc: null, reason: '--skip-peer' } : await loadNodeLlamaCpp();
if (nlc === null) console.log(`compare-cpu: llama.cpp peer skipped: ${reason}`);
/** One record per point from per-rep records: the median rep, with the spread over all reps. */
function mergeReps(perRep: BenchRecord[]): BenchRecord {
  const runs = perRep.map((r) => r.tokPerS);
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = perRep[runs.indexOf(sorted[Math.floor((sorted.length - 1) / 2)]!)]!;
  return { ...mid, tokPerSSpread: spread(runs), notes: [...mid.notes.filter((n) => !n.includes('rep(s)')), `${perRep.length} reps alternating with the peer; latency percentiles are the median rep's`] };
}

const byPoint = new Map<string, BenchRecord[]>();
const keep = (r: BenchRecord): void => {
  const k = `${r.engine}|${r.model}|${r.inLen}/${r.outLen}|${r.concurrency}`;
  (byPoint.get(k) ?? byPoint.set(k, []).get(k)!).push(r);
};
for (const name of values.models!.split(',')) {
  const m = prepare(name);
  const c = loadModelConfig(m.dir);
  const fp = await fingerprintOrMinimal(m.dir);
  for (let rep = 0; rep < reps; rep++) {
    const { records: ours } = await benchEngine({
      model: m.dir, presetDtype: 'f32', device: 'cpu', threads, cudaDtype: 'bf16', shapes: values.shapes!, concurrency: values.concurrency!,
      reps: 1, seed: 1 + rep, usdPerHour, peakGbS: peakGbPerS, output: join(OUT, `${name}-tokenmill-rep${rep}.json`),
    });
    for (const r of ours) {
      keep({ ...r, model: m.label, peakSource });
      console.log(`rep ${rep + 1}/${reps} ${formatRecordLine({ ...r, model: m.label })}`);
    }
    if (nlc === null) continue;
    const peer = await runLlamaCppPeer(nlc, {
      ggufPath: m.gguf, modelName: m.label, dtype: 'f32', vocabSize: c.vocabSize, threads, shapes, concurrency, numRequests: defaultNumRequests, reps: 1, seed: 1 + rep, usdPerHour,
      bytesPerStep: (batch, ctxLen) => bytesPerDecodeStep({ weightBytes: weightBytes(c, 'f32'), kvBytesPerToken: kvBytesPerToken(c, 'f32'), batch, avgContextLen: ctxLen }),
      peakGbPerS, peakSource, commit: gitCommitOf(fp), dirty: gitDirtyOf(fp), fingerprint: fp, command: commandLine(),
    });
    for (const r of peer) {
      keep(r);
      console.log(`rep ${rep + 1}/${reps} ${formatRecordLine(r)}`);
    }
  }
}
const records = [...byPoint.values()].map(mergeReps);
console.log('--- medians over reps');
for (const r of records) console.log(formatRecordLine(r));
const file = writeRun(records, { out: values.output!, kind: 'compare-cpu', label: `${threads}t`, command: `node --import tsx bench/engine/compare-cpu.ts ${process.argv.slice(2).join(' ')}`.trim(), loadStart });
console.log(`compare-cpu: wrote ${file}`);
