// Decode benchmark on CUDA, batch 1: load a HF checkpoint in bf16, prefill a seeded prompt, then
// greedy decode through SequenceDriver (one host read of the logits per token, as a real loop).
// Prints one JSON record: tok/s, TTFT, inter-token p50/p99, achieved GB/s (weights + KV read per
// step over the measured step time). Peer: bench/peers/hf_decode_bench.py (same shapes, same run).
// Usage: node --import tsx bench/gpu/decode-bench.ts --model DIR [--prompt-len 128] [--new 256]
import { parseArgs } from 'node:util';
import { loadModel } from '../../src/model/loader.js';
import { SequenceDriver } from '../../src/model/sequence-driver.js';
import { createCudaBackend, probeCuda } from '../../src/runtime/select.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, 'prompt-len': { type: 'string', default: '128' }, new: { type: 'string', default: '256' }, warmup: { type: 'string', default: '16' } } });
if (!values.model) throw new Error('--model DIR is required');
const promptLen = Number(values['prompt-len']);
const numNew = Number(values.new);

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
}

const probe = probeCuda();
const backend = createCudaBackend({ dtype: 'bf16' });
const { model, config: c } = await loadModel(values.model, backend);
const driver = new SequenceDriver(model, { maxSeqLen: promptLen + numNew + 16 });
let seed = 1;
const prompt = Array.from({ length: promptLen }, () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return 3 + (seed % (Math.min(c.vocabSize, 32000) - 3));
});

async function run(n: number): Promise<{ ttftMs: number; itlMs: number[] }> {
  driver.reset();
  await backend.synchronize();
  const t0 = performance.now();
  let logits = await driver.prefill(prompt);
  const ttftMs = performance.now() - t0;
  const itlMs: number[] = [];
  for (let i = 1; i < n; i++) {
    const s = performance.now();
    logits = await driver.decode(argmax(logits));
    itlMs.push(performance.now() - s);
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
  engine: 'tokenmill-cuda', device: probe.devices[0]?.name ?? 'unknown', dtype: 'bf16', batch: 1, inLen: promptLen, outLen: numNew,
  ttftMs, tokPerS: 1000 / stepMs, itlP50Ms: sorted[Math.floor(sorted.length / 2)], itlP99Ms: sorted[Math.floor(sorted.length * 0.99)],
  bytesPerStep: weightBytes + kvBytes, gbPerS: (weightBytes + kvBytes) / (stepMs / 1000) / 1e9, cublasLt: backend.info().cublasLt,
};
console.log(JSON.stringify(rec));
driver.dispose();
model.dispose();
backend.dispose();
