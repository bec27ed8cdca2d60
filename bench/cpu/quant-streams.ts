// The 32-stream row of bench/cpu/quant.ts, in its own process: total output tok/s with --streams
// sequences in flight on one GGUF file, tokenmill (`bench engine` in-process, the serving Engine) then
// llama.cpp (node-llama-cpp, one context holding --streams sequences: bench/peers/llama-cpp.ts), same
// seeded prompts (--prompt tokens in, --gen out), 2 x streams requests per point, one rep each.
// Prints one JSON line: { tokenmillTokPerS, llamaCppTokPerS } (null with an error string when one fails).
//   node --import tsx bench/cpu/quant-streams.ts --gguf FILE --threads N [--streams 32] [--prompt 128] [--gen 64] [--seed 1]
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchEngine } from '../../src/cli/bench.js';
import { fingerprintOrMinimal, gitCommitOf, gitDirtyOf } from '../../src/cli/bench-common.js';
import { readGgufFile } from '../../src/model/convert/gguf-reader.js';
import { loadNodeLlamaCpp, runLlamaCppPeer } from '../peers/llama-cpp.js';

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (def === undefined) throw new Error(`missing --${name}`);
  return def;
}

const gguf = arg('gguf');
const threads = Number(arg('threads', '1'));
const streams = Number(arg('streams', '32'));
const inLen = Number(arg('prompt', '128'));
const outLen = Number(arg('gen', '64'));
const seed = Number(arg('seed', '1'));
const numRequests = 2 * streams;
const vocabSize = Number(readGgufFile(gguf).tensors.get('token_embd.weight')?.shape[0] ?? 0);

let tokenmillTokPerS: number | null = null;
let llamaCppTokPerS: number | null = null;
const errors: string[] = [];
try {
  const { records } = await benchEngine({
    model: gguf,
    presetDtype: 'f32',
    device: 'cpu',
    threads,
    cudaDtype: 'bf16',
    in: inLen,
    out: outLen,
    concurrency: String(streams),
    numRequests,
    reps: 1,
    seed,
    usdPerHour: 0.1,
    peakGbS: 1,
    output: join(tmpdir(), `tokenmill-quant-streams-${process.pid}.json`),
  });
  tokenmillTokPerS = records[0]?.tokPerS ?? null;
} catch (e) {
  errors.push(`tokenmill: ${(e as Error).message}`);
}
const { nlc, reason } = await loadNodeLlamaCpp();
if (nlc === null) errors.push(`llama.cpp: ${reason}`);
else {
  try {
    const fp = await fingerprintOrMinimal(gguf);
    const peer = await runLlamaCppPeer(nlc, {
      ggufPath: gguf,
      modelName: gguf,
      dtype: 'gguf',
      vocabSize,
      threads,
      shapes: [{ inLen, outLen }],
      concurrency: [streams],
      numRequests: () => numRequests,
      reps: 1,
      seed,
      usdPerHour: 0.1,
      peakGbPerS: null,
      peakSource: null,
      commit: gitCommitOf(fp),
      dirty: gitDirtyOf(fp),
      fingerprint: fp,
      command: 'bench/cpu/quant-streams.ts',
    });
    llamaCppTokPerS = peer[0]?.tokPerS ?? null;
  } catch (e) {
    errors.push(`llama.cpp: ${(e as Error).message}`);
  }
}
console.log(JSON.stringify({ streams, threads, inLen, outLen, numRequests, tokenmillTokPerS, llamaCppTokPerS, errors }));
