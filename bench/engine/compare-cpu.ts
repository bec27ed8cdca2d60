// CPU comparison on this machine (BENCHMARKS.md): tokenmill (`bench engine` in-process) vs llama.cpp
// (node-llama-cpp's prebuilt CPU binary, bench/peers/llama-cpp.ts) on the same weights: stories260K
// (real, converted from ../shared with convert llama2c) and the stories15M shape (seeded random f32),
// and the stories15M / stories110M shapes (seeded random f32), each exported to GGUF by convertToGguf.
// Same shapes, seeded prompts and concurrency; one run file per thread count. Reps alternate engines
// (tokenmill on each ISA, llama.cpp, tokenmill, ...) so a shared machine's load swings hit all alike;
// each point reports the median rep with min/max over reps, and the tokenmill / llama.cpp ratio of
// the medians per (model, threads, concurrency, ISA) is printed and written next to the run file.
// --isas best,avx2 runs tokenmill on the best kernel ISA and forced avx2 (deduplicated when they match).
// Bandwidth: the addon's read probe (1 GiB sum, median of 5) per thread count (bench/cpu/read-bandwidth.ts).
//   node --import tsx bench/engine/compare-cpu.ts [--models stories15M,stories110M] [--threads 1,2]
//     [--isas best,avx2] [--shapes 128/128] [--concurrency 1,32] [--reps 5] [--usd-per-hour 0.1] [--output bench/results]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchEngine } from '../../src/cli/bench.js';
import {
  commandLine,
  fingerprintOrMinimal,
  formatRecordLine,
  gitCommitOf,
  gitDirtyOf,
  parseIntList,
  parseShapes,
  writeRun,
} from '../../src/cli/bench-common.js';
import { defaultNumRequests } from '../../src/cli/bench-engine.js';
import type { BenchRecord } from '../../src/metrics/bench/bench-record.js';
import { spread } from '../../src/metrics/bench/percentiles.js';
import { bytesPerDecodeStep } from '../../src/metrics/bench/bench-record.js';
import { selectBackend, type CpuIsa } from '../../src/runtime/select.js';
import { measureReadBandwidth } from '../cpu/read-bandwidth.js';
import { weightBytes, kvBytesPerToken } from '../../src/metrics/planner.js';
import { loadModelConfig } from '../../src/model/config.js';
import { convertLlama2c } from '../../src/model/convert/llama2c.js';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadNodeLlamaCpp, runLlamaCppPeer } from '../peers/llama-cpp.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'stories15M,stories110M' },
    threads: { type: 'string', default: '1,2' },
    shapes: { type: 'string', default: '128/128' },
    isas: { type: 'string', default: 'best,avx2' },
    concurrency: { type: 'string', default: '1,32' },
    reps: { type: 'string', default: '5' },
    'usd-per-hour': { type: 'string', default: '0.1' },
    output: { type: 'string', default: 'bench/results' },
    'skip-peer': { type: 'boolean', default: false },
  },
});
const OUT = resolve('bench/out/compare');
const SHARED = resolve(process.env.TOKENMILL_SHARED ?? '../shared', 'models', 'stories260K');
const threadList = parseIntList(values.threads!, '--threads');
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
const readGbPerS = new Map(threadList.map((t) => [t, measureReadBandwidth(t).median]));
const peakSource = 'measured read bandwidth (addon probe: 1 GiB sum, median of 5) at the same thread count';
console.log(
  `compare-cpu: read bandwidth ${[...readGbPerS].map(([t, g]) => `${g} GB/s (${t}t)`).join(', ')}; load average ` +
    `${loadStart.map((x) => x.toFixed(1)).join(' ')}`,
);
/** The ISAs to run: 'best' is what this CPU picks; a forced ISA that resolves to the same table runs once. */
function resolveIsas(list: string[]): { label: string; cpuIsa?: CpuIsa }[] {
  const probe = (cpuIsa?: CpuIsa): string => {
    const { backend } = selectBackend({ device: 'cpu', numThreads: 1, ...(cpuIsa !== undefined ? { cpuIsa } : {}) });
    const isa = (backend as unknown as { isa?: string }).isa ?? 'unknown';
    backend.dispose();
    return isa;
  };
  const seen = new Map<string, { label: string; cpuIsa?: CpuIsa }>();
  for (const want of list) {
    const cpuIsa = want === 'best' ? undefined : (want as CpuIsa);
    const got = probe(cpuIsa);
    if (!seen.has(got)) seen.set(got, { label: got, ...(cpuIsa !== undefined ? { cpuIsa } : {}) });
  }
  return [...seen.values()];
}
const isas = resolveIsas(values.isas!.split(','));
const { nlc, reason } = values['skip-peer'] ? { nlc: null, reason: '--skip-peer' } : await loadNodeLlamaCpp();
if (nlc === null) console.log(`compare-cpu: llama.cpp peer skipped: ${reason}`);
/** One record per point from per-rep records: the median rep, with the spread over all reps. */
function mergeReps(perRep: BenchRecord[]): BenchRecord {
  const runs = perRep.map((r) => r.tokPerS);
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = perRep[runs.indexOf(sorted[Math.floor((sorted.length - 1) / 2)]!)]!;
  return {
    ...mid,
    tokPerSSpread: spread(runs),
    notes: [
      ...mid.notes.filter((n) => !n.includes('rep(s)')),
      `${perRep.length} reps alternating with the peer; latency percentiles are the median rep's`,
    ],
  };
}

const byPoint = new Map<string, BenchRecord[]>();
const pointKey = (engine: string, r: BenchRecord, threads: number): string =>
  `${engine}|${threads}|${r.model}|${r.inLen}/${r.outLen}|${r.concurrency}`;
const keep = (engine: string, r: BenchRecord, threads: number): void => {
  const k = pointKey(engine, r, threads);
  (byPoint.get(k) ?? byPoint.set(k, []).get(k)!).push(r);
};
for (const name of values.models!.split(',')) {
  const m = prepare(name);
  const c = loadModelConfig(m.dir);
  const fp = await fingerprintOrMinimal(m.dir);
  for (const threads of threadList) {
    const peakGbPerS = readGbPerS.get(threads)!;
    for (let rep = 0; rep < reps; rep++) {
      for (const isa of isas) {
        const { records: ours } = await benchEngine({
          model: m.dir,
          presetDtype: 'f32',
          device: 'cpu',
          threads,
          cudaDtype: 'bf16',
          shapes: values.shapes!,
          concurrency: values.concurrency!,
          reps: 1,
          seed: 1 + rep,
          usdPerHour,
          peakGbS: peakGbPerS,
          output: join(OUT, `${name}-tokenmill-${isa.label}-${threads}t-rep${rep}.json`),
          ...(isa.cpuIsa !== undefined ? { cpuIsa: isa.cpuIsa } : {}),
        });
        for (const r of ours) {
          keep(`tokenmill-${isa.label}`, { ...r, model: m.label, peakSource }, threads);
          console.log(`rep ${rep + 1}/${reps} ${threads}t ${isa.label} ${formatRecordLine({ ...r, model: m.label })}`);
        }
      }
      if (nlc === null) continue;
      const peer = await runLlamaCppPeer(nlc, {
        ggufPath: m.gguf,
        modelName: m.label,
        dtype: 'f32',
        vocabSize: c.vocabSize,
        threads,
        shapes,
        concurrency,
        numRequests: defaultNumRequests,
        reps: 1,
        seed: 1 + rep,
        usdPerHour,
        peakGbPerS,
        peakSource,
        commit: gitCommitOf(fp),
        dirty: gitDirtyOf(fp),
        fingerprint: fp,
        command: commandLine(),
        bytesPerStep: (batch, ctxLen) =>
          bytesPerDecodeStep({
            weightBytes: weightBytes(c, 'f32'),
            kvBytesPerToken: kvBytesPerToken(c, 'f32'),
            batch,
            avgContextLen: ctxLen,
          }),
      });
      for (const r of peer) {
        keep('llama.cpp', r, threads);
        console.log(`rep ${rep + 1}/${reps} ${threads}t ${formatRecordLine(r)}`);
      }
    }
  }
}
const merged = new Map([...byPoint].map(([k, v]) => [k, mergeReps(v)]));
console.log('--- medians over reps');
for (const r of merged.values()) console.log(formatRecordLine(r));
const ratios: Record<string, unknown>[] = [];
for (const [k, r] of merged) {
  const [engine, threads] = k.split('|');
  if (!engine!.startsWith('tokenmill-')) continue;
  const peer = merged.get(pointKey('llama.cpp', r, Number(threads)));
  const ratio = peer !== undefined && peer.tokPerS > 0 ? Math.round((100 * r.tokPerS) / peer.tokPerS) / 100 : null;
  const row = {
    model: r.model,
    threads: Number(threads),
    isa: engine!.slice('tokenmill-'.length),
    shape: `${r.inLen}/${r.outLen}`,
    concurrency: r.concurrency,
    tokenmill: r.tokPerSSpread ?? null,
    llamaCpp: peer?.tokPerSSpread ?? null,
    ratio,
    readGbPerS: readGbPerS.get(Number(threads)),
  };
  ratios.push(row);
  console.log(
    `ratio ${row.model} ${row.threads}t ${row.isa} ${row.shape} x${row.concurrency}: tokenmill/llama.cpp ${ratio ?? '?'}x ` +
      `(tokenmill ${r.tokPerS.toFixed(1)} [${r.tokPerSSpread?.min?.toFixed(1)}..${r.tokPerSSpread?.max?.toFixed(1)}] vs ` +
      `llama.cpp ${peer?.tokPerS.toFixed(1) ?? '?'} [${peer?.tokPerSSpread?.min?.toFixed(1) ?? '?'}..` +
      `${peer?.tokPerSSpread?.max?.toFixed(1) ?? '?'}] tok/s)`,
  );
}
const file = writeRun([...merged.values()], {
  out: values.output!,
  kind: 'compare-cpu',
  label: `${threadList.join('-')}t`,
  command: `node --import tsx bench/engine/compare-cpu.ts ${process.argv.slice(2).join(' ')}`.trim(),
  loadStart,
});
writeFileSync(
  file.replace(/\.json$/, '.ratios.json'),
  `${JSON.stringify({ isas: isas.map((x) => x.label), readGbPerS: Object.fromEntries(readGbPerS), reps, ratios }, null, 2)}\n`,
);
console.log(`compare-cpu: wrote ${file} and its .ratios.json`);
