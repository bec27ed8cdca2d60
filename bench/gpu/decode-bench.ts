// Decode benchmark on CUDA, batch 1: load a HF checkpoint in bf16, then one greedy request of a
// seeded prompt through generate() (the serving Engine with ENGINE_DEFAULTS: device argmax, 4 bytes
// read back per token, as `serve`).
// Prints one JSON record: tok/s, TTFT, inter-token p50/p99, achieved GB/s (weights + KV read per
// step over the measured step time). Peer: bench/peers/hf_decode_bench.py (same shapes, same run).
// Usage: node --import tsx bench/gpu/decode-bench.ts --model DIR [--prompt-len 128] [--new 256]
import { parseArgs } from 'node:util';
import { loadModel } from '../../src/model/loader.js';
import { generate } from '../../src/engine/generate.js';
import { ENGINE_DEFAULTS } from '../../src/engine/engine-defaults.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { createCudaBackend, probeCuda } from '../../src/runtime/select.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    'prompt-len': { type: 'string', default: '128' },
    new: { type: 'string', default: '256' },
    warmup: { type: 'string', default: '16' },
  },
});
if (!values.model) throw new Error('--model DIR is required');
const promptLen = Number(values['prompt-len']);
const numNew = Number(values.new);

const probe = probeCuda();
const backend = createCudaBackend({ dtype: 'bf16' });
const { model, config: c } = await loadModel(values.model, backend);
let seed = 1;
const prompt = Array.from({ length: promptLen }, () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return 3 + (seed % (Math.min(c.vocabSize, 32000) - 3));
});

/** One greedy request through generate() (the serving Engine, ENGINE_DEFAULTS): TTFT and per-token gaps. */
async function run(n: number): Promise<{ ttftMs: number; itlMs: number[] }> {
  await backend.synchronize();
  const params = samplingParams({ temperature: 0, maxTokens: n, ignoreEos: true });
  const t0 = performance.now();
  let last = t0;
  let ttftMs = 0;
  const itlMs: number[] = [];
  for await (const ev of generate(model, null, prompt, { params })) {
    if (ev.tokenIds.length === 0) continue;
    const now = performance.now();
    if (ttftMs === 0) ttftMs = now - t0;
    else itlMs.push(now - last);
    last = now;
  }
  return { ttftMs, itlMs };
}

await run(Number(values.warmup));
const { ttftMs, itlMs } = await run(numNew);
const stepMs = itlMs.reduce((a, b) => a + b, 0) / itlMs.length;
const sorted = [...itlMs].sort((a, b) => a - b);
const D = c.hiddenSize;
const q = c.numHeads * c.headDim;
const kv = c.numKvHeads * c.headDim;
const perLayer = D * q + 2 * D * kv + q * D + 3 * D * c.intermediateSize + 2 * D;
const weightBytes = 2 * (c.numLayers * perLayer + c.vocabSize * D + D);
const kvBytes = (promptLen + numNew / 2) * c.numLayers * 2 * kv * 2;
const rec = {
  engine: 'tokenmill-cuda',
  device: probe.devices[0]?.name ?? 'unknown',
  dtype: 'bf16',
  batch: 1,
  inLen: promptLen,
  outLen: numNew,
  ttftMs,
  tokPerS: 1000 / stepMs,
  itlP50Ms: sorted[Math.floor(sorted.length / 2)],
  itlP99Ms: sorted[Math.floor(sorted.length * 0.99)],
  bytesPerStep: weightBytes + kvBytes,
  gbPerS: (weightBytes + kvBytes) / (stepMs / 1000) / 1e9,
  cublasLt: backend.info().cublasLt,
  engineConfig: ENGINE_DEFAULTS,
};
console.log(JSON.stringify(rec));
model.dispose();
backend.dispose();
