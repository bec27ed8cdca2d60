// Seeded random models with init 'well-conditioned' (src/model/random-model.ts) stay non-chaotic
// through depth, so bf16-vs-f32 top-1 agreement means something: a deep narrow Llama (32 layers,
// hidden 128, vocab 4096, bf16 weights) teacher-forced over 256 generated tokens, f32 (CPU backend,
// else the reference) vs the simulated bf16-compute backend (test/conformance/bf16-sim.ts: bf16
// activations and KV, f32 math inside each op). TOKENMILL_WC_COMPARE=1 also measures the default
// init (information only; ~8 s more). TM_WC_HIDDEN / TM_WC_LAYERS / TM_WC_STEPS change the shape for
// measurements. Numbers in docs/kernels.md, "Well-conditioned random models".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/model/loader.js';
import { openCheckpoint } from '../../src/model/safetensors.js';
import { writeRandomModel, type RandomInit } from '../../src/model/random-model.js';
import { ForwardDriver } from './forward-driver.js';
import { Xoshiro128 } from '../../src/model/prng.js';
import { cpuAddonAvailable, createCpuBackend } from '../../src/runtime/select.js';
import { createReferenceBackend } from '../../src/runtime/reference/reference-backend.js';
import type { Backend } from '../../src/runtime/backend.js';
import { createBf16SimBackend } from '../conformance/bf16-sim.js';

const LAYERS = Number(process.env.TM_WC_LAYERS ?? 32);
const HIDDEN = Number(process.env.TM_WC_HIDDEN ?? 128);
const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: HIDDEN,
  intermediate_size: Math.round(HIDDEN * 2.6875),
  num_hidden_layers: LAYERS,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  vocab_size: 4096,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: false,
};
const PROMPT = 32;
const STEPS = Number(process.env.TM_WC_STEPS ?? 256);
const V = CONFIG.vocab_size;

let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'tm-wc-'));
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function f32Backend(): Backend {
  return cpuAddonAvailable().available ? createCpuBackend({ numThreads: 2 }) : createReferenceBackend();
}

function argmaxRow(x: Float32Array, row: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (x[row * V + i]! > x[row * V + best]!) best = i;
  return best;
}

interface Measure {
  agreement: number;
  relErrMean: number;
  favoured: number;
  marginUlps: number;
}

async function measure(init: RandomInit): Promise<Measure> {
  const dir = join(work, init);
  writeRandomModel(dir, CONFIG, { seed: 7, dtype: 'bf16', init, tokenizer: false });
  const u = new Xoshiro128(11);
  const prompt = Array.from({ length: PROMPT }, () => 4 + Math.floor(u.next() * (V - 4)));
  // f32: greedy continuation (one token at a time), then the teacher-forced rows of the whole sequence.
  const b32 = f32Backend();
  let ids: number[];
  let rows32: Float32Array;
  {
    const { model } = await loadModel(dir, b32);
    const d = new ForwardDriver(model, { maxSeqLen: PROMPT + STEPS + 8 });
    try {
      ids = [...prompt];
      let logits = await d.prefill(prompt);
      for (let i = 0; i < STEPS; i++) {
        ids.push(argmaxRow(logits, 0));
        if (i + 1 < STEPS) logits = await d.decode(ids[ids.length - 1]!);
      }
    } finally {
      d.dispose();
    }
    const d2 = new ForwardDriver(model, { maxSeqLen: PROMPT + STEPS + 8 });
    try {
      rows32 = await d2.prefill(ids.slice(0, PROMPT + STEPS - 1), { allLogits: true });
    } finally {
      d2.dispose();
      model.dispose();
      b32.dispose();
    }
  }
  const b16 = createBf16SimBackend();
  let rows16: Float32Array;
  {
    const { model } = await loadModel(dir, b16);
    const d = new ForwardDriver(model, { maxSeqLen: PROMPT + STEPS + 8 });
    try {
      rows16 = await d.prefill(ids.slice(0, PROMPT + STEPS - 1), { allLogits: true });
    } finally {
      d.dispose();
      model.dispose();
      b16.dispose();
    }
  }
  let agree = 0;
  let favoured = 0;
  let err = 0;
  const margins: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const row = PROMPT - 1 + s;
    const a = argmaxRow(rows32, row);
    if (a === argmaxRow(rows16, row)) agree++;
    if (a === (ids[row]! + V - 1) % V) favoured++;
    let num = 0;
    let den = 0;
    let second = -Infinity;
    for (let v = 0; v < V; v++) {
      const x = rows32[row * V + v]!;
      const y = rows16[row * V + v]!;
      num += (x - y) ** 2;
      den += x * x;
      if (v !== a && x > second) second = x;
    }
    err += Math.sqrt(num / den);
    const top = rows32[row * V + a]!;
    const ulp = 2 ** (Math.floor(Math.log2(Math.abs(top))) - 7); // bf16 spacing at the top logit
    margins.push((top - second) / ulp);
  }
  margins.sort((x, y) => x - y);
  return { agreement: agree / STEPS, relErrMean: err / STEPS, favoured: favoured / STEPS, marginUlps: margins[Math.floor(STEPS / 2)]! };
}

test('well-conditioned lm_head is the embedding rolled by one row over sqrt(hidden); default init unchanged', async () => {
  const cfg = {
    ...CONFIG,
    num_hidden_layers: 1,
    hidden_size: 16,
    intermediate_size: 32,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    vocab_size: 64,
  };
  const c = writeRandomModel(join(work, 'small-wc'), cfg, { seed: 3, init: 'well-conditioned', tokenizer: false });
  const st = openCheckpoint(join(work, 'small-wc'));
  const emb = (st.read('model.embed_tokens.weight').data as Float32Array).slice(); // read() may reuse its buffer
  const head = (st.read('lm_head.weight').data as Float32Array).slice();
  st.close();
  for (let v = 0; v < c.vocabSize; v++) {
    for (let i = 0; i < c.hiddenSize; i++) {
      const want = emb[((v + 1) % c.vocabSize) * c.hiddenSize + i]! / Math.sqrt(c.hiddenSize);
      assert.ok(Math.abs(head[v * c.hiddenSize + i]! - want) <= 1e-6 * Math.abs(want) + 1e-12, `lm_head[${v}, ${i}]`);
    }
  }
  const d = writeRandomModel(join(work, 'small-default'), cfg, { seed: 3, tokenizer: false });
  const sd = openCheckpoint(join(work, 'small-default'));
  const headDefault = sd.read('lm_head.weight').data as Float32Array;
  sd.close();
  assert.equal(d.vocabSize, c.vocabSize);
  assert.notDeepEqual(Array.from(headDefault.subarray(0, 16)), Array.from(head.subarray(0, 16)));
});

test(`well-conditioned init: ${LAYERS}-layer model, f32 vs bf16-sim top-1 over ${STEPS} teacher-forced steps >= 99%`, async () => {
  const t0 = Date.now();
  const wc = await measure('well-conditioned');
  const old = process.env.TOKENMILL_WC_COMPARE === '1' ? await measure('default') : null;
  console.log(JSON.stringify({ layers: LAYERS, hidden: HIDDEN, steps: STEPS, wellConditioned: wc, default: old, ms: Date.now() - t0 }));
  assert.ok(wc.agreement >= 0.99, `well-conditioned agreement ${wc.agreement}`);
  assert.ok(wc.relErrMean <= 0.05, `well-conditioned mean relative logit error ${wc.relErrMean}`);
});
