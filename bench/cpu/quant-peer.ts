// One llama.cpp measurement on a GGUF file, in its own process (the peer of bench/cpu/measure.ts in
// bench/cpu/quant.ts): greedy decode of --gen tokens after a seeded --prompt-token prompt, --reps times
// after a warm-up, through node-llama-cpp's prebuilt CPU binary (bench/peers). Prints one JSON line:
// prefill tok/s (prompt tokens / time to first token) and decode tok/s per rep.
//   node --import tsx bench/cpu/quant-peer.ts --gguf FILE --threads N [--prompt 128] [--gen 64] [--reps 1] --vocab V
import { loadNodeLlamaCpp } from '../peers/llama-cpp.js';

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (def === undefined) throw new Error(`missing --${name}`);
  return def;
}

interface Seq {
  evaluate(tokens: number[], o?: { temperature?: number }): AsyncGenerator<number, void, unknown>;
  clearHistory(): Promise<void>;
}
interface Ctx {
  getSequence(): Seq;
  dispose(): Promise<void>;
}
interface Model {
  createContext(o: Record<string, unknown>): Promise<Ctx>;
  dispose(): Promise<void>;
}
interface Llama {
  loadModel(o: { modelPath: string }): Promise<Model>;
  dispose(): Promise<void>;
}

const gguf = arg('gguf');
const threads = Number(arg('threads', '1'));
const promptLen = Number(arg('prompt', '128'));
const genLen = Number(arg('gen', '64'));
const reps = Number(arg('reps', '1'));
const vocab = Number(arg('vocab'));

const { nlc, reason } = await loadNodeLlamaCpp();
if (nlc === null) throw new Error(reason);
const llama = (await nlc.mod.getLlama({
  gpu: false,
  build: 'never',
  skipDownload: true,
  progressLogs: false,
  logLevel: 'error',
  maxThreads: threads,
})) as unknown as Llama;
const model = await llama.loadModel({ modelPath: gguf });
const ctx = await model.createContext({ contextSize: promptLen + genLen + 16, batchSize: Math.max(512, promptLen), threads, sequences: 1 });
const seq = ctx.getSequence();
let s = 12345;
const prompt = Array.from({ length: promptLen }, () => {
  s = (s * 1103515245 + 12345) >>> 0;
  return 3 + (s % (vocab - 3));
});

async function once(): Promise<{ prefill: number; decode: number }> {
  await seq.clearHistory();
  const t0 = performance.now();
  let t1 = 0;
  let n = 0;
  for await (const _ of seq.evaluate(prompt, { temperature: 0 })) {
    if (n === 0) t1 = performance.now();
    if (++n >= genLen) break;
  }
  const t2 = performance.now();
  return { prefill: promptLen / ((t1 - t0) / 1000), decode: (n - 1) / ((t2 - t1) / 1000) };
}

await once(); // warm-up
const prefillTokPerS: number[] = [];
const decodeTokPerS: number[] = [];
for (let r = 0; r < reps; r++) {
  const m = await once();
  prefillTokPerS.push(m.prefill);
  decodeTokPerS.push(m.decode);
}
await ctx.dispose();
await model.dispose();
await llama.dispose();
console.log(
  JSON.stringify({
    gguf,
    threads,
    promptLen,
    genLen,
    reps,
    prefillTokPerS,
    decodeTokPerS,
    peer: `llama.cpp via node-llama-cpp ${nlc.version ?? '?'}`,
  }),
);
