// One CPU bench measurement in its own process (so peak RSS belongs to one model and thread count):
//   node --import tsx bench/cpu/measure.ts --model DIR --threads N [--prompt 128] [--gen 64] [--reps 5]
// Greedy decode on the device (argmax op + readInt32) after a --prompt-token prefill; prints one
// JSON line: prefill and decode tok/s per rep, weight bytes, baseline and peak RSS.
import { readFileSync } from 'node:fs';
import { selectBackend } from '../../src/runtime/select.js';
import type { AttentionMetadata, Backend, Tensor } from '../../src/runtime/backend.js';
import { loadModel } from '../../src/model/loader.js';
import type { CausalLM, StepInputs } from '../../src/model/types.js';

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (def === undefined) throw new Error(`missing --${name}`);
  return def;
}

const modelDir = arg('model');
const numThreads = Number(arg('threads', '1'));
const promptLen = Number(arg('prompt', '128'));
const genLen = Number(arg('gen', '64'));
const reps = Number(arg('reps', '5'));
const blockSize = 16;

const baselineRssBytes = process.memoryUsage().rss;
const { backend } = selectBackend({ device: 'cpu', numThreads });
const { model, config } = await loadModel(modelDir, backend, { maxTokensPerStep: promptLen, maxLogitsPerStep: 1 });
const weightBytes = backend.memoryStats().allocatedBytes;

class Runner {
  readonly numBlocks: number;
  readonly kv;
  private readonly t: Record<string, Tensor> = {};
  constructor(readonly b: Backend, readonly m: CausalLM, maxLen: number) {
    this.numBlocks = Math.ceil(maxLen / blockSize);
    for (const n of ['ids', 'pos', 'slots']) this.t[n] = b.alloc([promptLen], 'i32');
    this.t.rows = b.alloc([1], 'i32');
    this.t.qsl = b.alloc([2], 'i32');
    this.t.lens = b.alloc([1], 'i32');
    this.t.bt = b.alloc([1, this.numBlocks], 'i32');
    this.t.next = b.alloc([1], 'i32');
    b.upload(this.t.bt!, Int32Array.from({ length: this.numBlocks }, (_, i) => i));
    this.kv = m.allocKvCache(this.numBlocks, blockSize);
  }
  /** Runs tokens at position p0 and returns the greedy next token. */
  async step(tokens: Int32Array, p0: number): Promise<number> {
    const b = this.b;
    const n = tokens.length;
    const pos = Int32Array.from({ length: n }, (_, i) => p0 + i);
    const ids = b.view(this.t.ids!, [n]);
    const posT = b.view(this.t.pos!, [n]);
    const slots = b.view(this.t.slots!, [n]);
    b.upload(ids, tokens);
    b.upload(posT, pos);
    b.upload(slots, pos);
    b.upload(this.t.rows!, Int32Array.of(n - 1));
    b.upload(this.t.qsl!, Int32Array.of(0, n));
    b.upload(this.t.lens!, Int32Array.of(p0 + n));
    const attention: AttentionMetadata = { numSeqs: 1, maxQueryLen: n, maxSeqLen: p0 + n, queryStartLoc: this.t.qsl!, seqLens: this.t.lens!, blockTables: this.t.bt! };
    const step: StepInputs = { numTokens: n, tokenIds: ids, positions: posT, slotMapping: slots, attention, logitsRows: this.t.rows!, numLogits: 1 };
    const logits = this.m.forward(step, this.kv);
    b.argmax(this.t.next!, logits);
    return (await b.readInt32(this.t.next!))[0]!;
  }
}

const runner = new Runner(backend, model, promptLen + genLen);
let seed = 12345;
const prompt = Int32Array.from({ length: promptLen }, () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return 3 + (seed % (config.vocabSize - 3));
});

const prefillTokPerS: number[] = [];
const decodeTokPerS: number[] = [];
let generated: number[] = [];
for (let r = 0; r < reps + 1; r++) {
  const t0 = performance.now();
  let next = await runner.step(prompt, 0);
  const t1 = performance.now();
  const out = [next];
  for (let i = 1; i < genLen; i++) {
    next = await runner.step(Int32Array.of(next), promptLen + i - 1);
    out.push(next);
  }
  const t2 = performance.now();
  if (r === 0) { generated = out; continue; } // warm-up
  prefillTokPerS.push(promptLen / ((t1 - t0) / 1000));
  decodeTokPerS.push((genLen - 1) / ((t2 - t1) / 1000));
  const same = out.every((x, i) => x === generated[i]);
  if (!same) throw new Error('non-deterministic greedy output across reps');
}
// VmHWM (this process's own high-water mark): getrusage's maxRSS is inherited from the parent
// across fork/exec on Linux, so it would report the bench driver's peak instead.
function vmHwmBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS * 1024;
}
const peakRssBytes = vmHwmBytes();
const info = (backend as unknown as { info?: () => { opTimeNs?: number[]; opCalls?: number[] } }).info?.();
if (info?.opTimeNs) {
  const names = ['', 'embedding', 'rmsnorm', 'addRmsnorm', 'matmul', 'rope', 'kvWrite', 'attention', 'siluMul', 'add', 'gatherRows', 'argmax', 'ropeKvWriteQkv'];
  const total = info.opTimeNs.reduce((a, b) => a + b, 0);
  const parts = names.map((n, i) => [n, info.opTimeNs![i]!, info.opCalls![i]!] as const).filter(([, t]) => t > 0).sort((a, b) => b[1] - a[1]);
  console.error(parts.map(([n, t, c]) => `${n} ${((t / total) * 100).toFixed(1)}% (${c} calls, ${(t / c / 1000).toFixed(1)} us)`).join('; '));
}
const isa = (backend as unknown as { isa?: string }).isa ?? 'unknown';
console.log(JSON.stringify({ modelDir, numThreads: backend.name === 'cpu' ? numThreads : 0, isa, promptLen, genLen, reps, prefillTokPerS, decodeTokPerS, weightBytes, baselineRssBytes, peakRssBytes, firstTokens: generated.slice(0, 8) }));
backend.dispose();
