// Quantized GGUF files loaded as they are (model/gguf-weights.ts) on the CPU backend: the real
// stories260K written as Q8_0 and Q4_0 by `convert to-gguf --type` (its rows are 64 wide: the legacy
// formats; the classifier is Q8_0 by llama.cpp's rule), perplexity on test/fixtures/tinystories-ppl.txt
// against the f32 directory (issue 12: within 2% and 10%); and a seeded K-format model (Q4_K_M: Q4_K
// with Q6_K attn_v / ffn_down / classifier) whose CPU logits match the reference backend's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2c } from '../../src/model/convert/llama2c.js';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import { readGgufFile } from '../../src/model/convert/gguf-reader.js';
import { loadModel, type LoadedModel } from '../../src/model/loader.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { ForwardDriver } from './forward-driver.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import type { Backend } from '../../src/runtime/backend.js';
import { sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';

const cpu = cpuAddonAvailable();
const noCpu = cpu.available ? false : `cpu addon unavailable: ${cpu.reason}`;
const shared = skipUnlessShared('stories260K/stories260K.bin', 'stories260K/tok512.bin');
const FIXTURE = join(process.cwd(), 'test', 'fixtures', 'tinystories-ppl.txt');

let work = '';
let backend: Backend | null = null;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'tm-gguf-q-'));
  if (cpu.available) backend = createCpuBackend({ numThreads: 2 });
});
after(() => {
  backend?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function allLogits(m: LoadedModel, tokens: readonly number[]): Promise<Float32Array> {
  const d = new ForwardDriver(m.model, { maxSeqLen: Math.min(512, m.config.maxPositionEmbeddings) });
  try {
    return await d.prefill(tokens, { allLogits: true });
  } finally {
    d.dispose();
  }
}

async function perplexity(m: LoadedModel, ids: readonly number[]): Promise<number> {
  const V = m.config.vocabSize;
  const l = await allLogits(m, ids.slice(0, -1));
  let s = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    let mx = -Infinity;
    for (let i = 0; i < V; i++) mx = Math.max(mx, l[t * V + i]!);
    let z = 0;
    for (let i = 0; i < V; i++) z += Math.exp(l[t * V + i]! - mx);
    s += Math.log(z) + mx - l[t * V + ids[t + 1]!]!;
  }
  return Math.exp(s / (ids.length - 1));
}

test('stories260K as Q8_0 / Q4_0 GGUF: perplexity within 2% / 10% of f32 on the reference text', { skip: noCpu || shared }, async (t) => {
  const dir = join(work, 'stories260K');
  convertLlama2c(sharedPath('stories260K/stories260K.bin'), sharedPath('stories260K/tok512.bin'), dir);
  const be = backend!;
  const b0 = be.memoryStats().allocatedBytes;
  const f = await loadModel(dir, be);
  const f32Bytes = be.memoryStats().allocatedBytes - b0;
  try {
    const bos = f.config.bosTokenId ?? 1;
    const tok = loadTokenizer(dir);
    const ids = [bos, ...(await tok.encode(readFileSync(FIXTURE, 'utf8').trim(), { addSpecialTokens: false }))];
    const pf = await perplexity(f, ids);
    for (const [type, limit] of [
      ['q8_0', 0.02],
      ['q4_0', 0.1],
    ] as const) {
      const file = join(work, `s260k-${type}.gguf`);
      const r = convertToGguf(dir, file, { type });
      const before = be.memoryStats();
      const q = await loadModel(file, be);
      try {
        const qBytes = be.memoryStats().allocatedBytes - before.allocatedBytes;
        t.diagnostic(`${type}: weights take ${qBytes} bytes in the backend vs ${f32Bytes} as f32`);
        // The backend saves what the file saves over f32 (blocks kept as stored, no f32 copy).
        const mats = [...readGgufFile(file).tensors.values()].filter((x) => x.shape.length === 2);
        const saved = mats.reduce((a, x) => a + 4 * x.numel - x.sizeBytes, 0);
        assert.ok(f32Bytes - qBytes >= 0.95 * saved, `${type}: backend holds ${qBytes} bytes vs f32 ${f32Bytes}; the file saves ${saved}`);
        const gTok = loadTokenizer(file);
        assert.deepEqual(
          await gTok.encode('Once upon a time', { addSpecialTokens: false }),
          await tok.encode('Once upon a time', { addSpecialTokens: false }),
        );
        const pq = await perplexity(q, ids);
        t.diagnostic(
          `${type} (${Object.entries(r.typeCounts)
            .map(([k, n]) => `${k} x${n}`)
            .join(
              ', ',
            )}): perplexity on ${ids.length} tokens ${pq.toFixed(4)} vs f32 ${pf.toFixed(4)} (${((pq / pf - 1) * 100).toFixed(2)}%)`,
        );
        assert.ok(Math.abs(pq / pf - 1) <= limit, `${type}: perplexity ${pq} vs f32 ${pf}: more than ${limit * 100}% apart`);
      } finally {
        q.model.dispose();
        assert.deepEqual(be.memoryStats(), before, `${type}: model freed every tensor`);
      }
    }
  } finally {
    f.model.dispose();
  }
});

test('seeded Q4_K_M GGUF (K formats, GQA): CPU logits match the reference backend; same argmax', { skip: noCpu }, async (t) => {
  const dir = join(work, 'tiny-k');
  writeRandomModel(
    dir,
    {
      architectures: ['LlamaForCausalLM'],
      hidden_size: 256,
      intermediate_size: 512,
      num_hidden_layers: 3,
      num_attention_heads: 8,
      num_key_value_heads: 2,
      vocab_size: 320,
      max_position_embeddings: 128,
      tie_word_embeddings: false,
    },
    { seed: 99, tokenizer: true, init: 'well-conditioned' },
  );
  const file = join(work, 'tiny-k.gguf');
  const r = convertToGguf(dir, file, { type: 'q4_k_m' });
  assert.deepEqual(r.typeCounts, { Q4_K: 20, Q6_K: 3, F32: 7 }); // use_more_bits(l, 3) picks layer 2 only
  const ref = createReferenceBackend();
  const [mc, mr] = [await loadModel(file, backend!), await loadModel(file, ref)];
  try {
    const seq = [1, 17, 99, 250, 3, 44, 45, 200];
    const [lc, lr] = [await allLogits(mc, seq), await allLogits(mr, seq)];
    let maxDiff = 0,
      scale = 0;
    for (let i = 0; i < lr.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(lc[i]! - lr[i]!));
      scale = Math.max(scale, Math.abs(lr[i]!));
    }
    const V = mc.config.vocabSize;
    let same = 0;
    for (let p = 0; p < seq.length; p++) {
      const am = (l: Float32Array) => {
        let b = 0;
        for (let i = 1; i < V; i++) if (l[p * V + i]! > l[p * V + b]!) b = i;
        return b;
      };
      if (am(lc) === am(lr)) same++;
    }
    t.diagnostic(
      `max |logit cpu - ref| ${maxDiff.toExponential(2)} (max |logit| ${scale.toFixed(3)}), argmax agreement ${same}/${seq.length}`,
    );
    assert.ok(maxDiff <= 1e-3 * Math.max(1, scale), `logits differ by ${maxDiff}`);
    assert.equal(same, seq.length);
  } finally {
    mc.model.dispose();
    mr.model.dispose();
    ref.dispose();
  }
});
