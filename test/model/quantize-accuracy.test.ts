// Accuracy of weight-only int8 (--quantize int8) against the unquantized model on the CPU backend:
// the real stories260K (greedy top-1 agreement over 200 teacher-forced steps, perplexity on
// test/fixtures/tinystories-ppl.txt with its real tokenizer) and a seeded random stories15M-shape
// model (top-1 agreement), and free-running greedy f32 vs int8 over 64 steps (reported, with a floor).
// Thresholds come from measurements (docs/kernels.md, "CPU int8 weights").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2c } from '../../src/model/convert/llama2c.js';
import { loadModel, type LoadedModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { ForwardDriver } from './forward-driver.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable, createCpuBackend } from '../../src/runtime/select.js';
import type { Backend } from '../../src/runtime/backend.js';
import { sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';

const cpu = cpuAddonAvailable();
const noCpu = cpu.available ? false : `cpu addon unavailable: ${cpu.reason}`;
const shared = skipUnlessShared('stories260K/stories260K.bin', 'stories260K/tok512.bin');
const FIXTURE = join(process.cwd(), 'test', 'fixtures', 'tinystories-ppl.txt');
const STEPS = 200;

let work = '';
let backend: Backend | null = null;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'tm-q8-'));
  if (cpu.available) backend = createCpuBackend({ numThreads: 2 });
});
after(() => {
  backend?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

function argmaxRow(x: Float32Array, row: number, V: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (x[row * V + i]! > x[row * V + best]!) best = i;
  return best;
}

/** -log softmax(logits[row])[target], in f64. */
function nll(x: Float32Array, row: number, V: number, target: number): number {
  let m = -Infinity;
  for (let i = 0; i < V; i++) m = Math.max(m, x[row * V + i]!);
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp(x[row * V + i]! - m);
  return Math.log(s) + m - x[row * V + target]!;
}

/** Teacher-forced logits [tokens.length, V] for one whole sequence. */
async function allLogits(m: LoadedModel, tokens: readonly number[]): Promise<Float32Array> {
  const d = new ForwardDriver(m.model, { maxSeqLen: Math.min(512, m.config.maxPositionEmbeddings) });
  try {
    return await d.prefill(tokens, { allLogits: true });
  } finally {
    d.dispose();
  }
}

/** Greedy continuation of `prompt` by decoding one token at a time (the f32 reference sequence). */
async function greedy(m: LoadedModel, prompt: readonly number[], steps: number): Promise<number[]> {
  const V = m.config.vocabSize;
  const d = new ForwardDriver(m.model, { maxSeqLen: Math.min(512, m.config.maxPositionEmbeddings) });
  try {
    const ids = [...prompt];
    let logits = await d.prefill(prompt);
    for (let i = 0; i < steps; i++) {
      ids.push(argmaxRow(logits, 0, V));
      if (i + 1 < steps) logits = await d.decode(ids[ids.length - 1]!);
    }
    return ids;
  } finally {
    d.dispose();
  }
}

/** Share of positions where both models' teacher-forced argmax agree, and the largest |logit diff|. */
async function agreement(f: LoadedModel, q: LoadedModel, seq: readonly number[]): Promise<{ agree: number; maxDiff: number }> {
  const V = f.config.vocabSize;
  const [lf, lq] = [await allLogits(f, seq), await allLogits(q, seq)];
  let same = 0;
  let maxDiff = 0;
  for (let t = 0; t < seq.length; t++) if (argmaxRow(lf, t, V) === argmaxRow(lq, t, V)) same++;
  for (let i = 0; i < lf.length; i++) maxDiff = Math.max(maxDiff, Math.abs(lf[i]! - lq[i]!));
  return { agree: same / seq.length, maxDiff };
}

async function perplexity(m: LoadedModel, ids: readonly number[]): Promise<number> {
  const V = m.config.vocabSize;
  const l = await allLogits(m, ids.slice(0, -1));
  let s = 0;
  for (let t = 0; t + 1 < ids.length; t++) s += nll(l, t, V, ids[t + 1]!);
  return Math.exp(s / (ids.length - 1));
}

test('stories260K int8: greedy top-1 agreement over 200 steps and fixture perplexity vs f32', { skip: noCpu || shared }, async (t) => {
  const dir = join(work, 'stories260K');
  convertLlama2c(sharedPath('stories260K/stories260K.bin'), sharedPath('stories260K/tok512.bin'), dir);
  const be = backend!;
  const f = await loadModel(dir, be);
  const before = be.memoryStats();
  const q = await loadModel(dir, be, { quantize: 'int8' });
  const qNoHead = await loadModel(dir, be, { quantize: 'int8', quantizeLmHead: false });
  try {
    const bos = f.config.bosTokenId ?? 1;
    const seq = (await greedy(f, [bos], STEPS)).slice(0, STEPS); // BOS + 199 generated: 200 positions
    const a = await agreement(f, q, seq);
    const aNoHead = await agreement(f, qNoHead, seq);
    const tok = loadTokenizer(dir);
    const ids = [bos, ...(await tok.encode(readFileSync(FIXTURE, 'utf8').trim(), { addSpecialTokens: false }))];
    const [pf, pq] = [await perplexity(f, ids), await perplexity(q, ids)];
    t.diagnostic(
      `agreement int8 ${(a.agree * 100).toFixed(1)}% (max |dlogit| ${a.maxDiff.toFixed(3)}), int8 with f32 lm_head ` +
        `${(aNoHead.agree * 100).toFixed(1)}%`,
    );
    t.diagnostic(`perplexity on ${ids.length} tokens: f32 ${pf.toFixed(4)}, int8 ${pq.toFixed(4)} (${((pq / pf - 1) * 100).toFixed(2)}%)`);
    // Measured: 99.0% (198/200; 100% with an f32 lm_head), ppl 2.4793 vs 2.4764 (-0.12%). A flip
    // needs a top-2 gap below the int8 logit error (max ~0.3 here): allow 3x the measured flips; a
    // wrong scale, rounding or layout drops agreement far below this and moves ppl by > 10%.
    assert.ok(a.agree >= 0.97, `int8 top-1 agreement ${a.agree} < 0.97`);
    assert.ok(aNoHead.agree >= 0.97, `int8 (f32 lm_head) top-1 agreement ${aNoHead.agree} < 0.97`);
    assert.ok(Math.abs(pq / pf - 1) <= 0.02, `perplexity int8 ${pq} vs f32 ${pf}: more than 2% apart`);
  } finally {
    q.model.dispose();
    qNoHead.model.dispose();
    assert.deepEqual(be.memoryStats(), before, 'quantized models freed every tensor');
    f.model.dispose();
  }
});

test('seeded random stories15M shape int8: teacher-forced top-1 agreement vs f32', { skip: noCpu }, async (t) => {
  const preset = MODEL_PRESETS.stories15M;
  assert.ok(preset, 'stories15M preset');
  const dir = join(work, 'stories15M');
  writeRandomModel(dir, preset.config, { seed: 1234, tokenizer: false });
  const be = backend!;
  const f = await loadModel(dir, be);
  const q = await loadModel(dir, be, { quantize: 'int8' });
  try {
    const seq = await greedy(f, [1, 400, 500, 600], 60);
    const a = await agreement(f, q, seq);
    t.diagnostic(
      `random stories15M: agreement ${(a.agree * 100).toFixed(1)}% over ${seq.length} positions, max |dlogit| ${a.maxDiff.toFixed(3)}`,
    );
    assert.ok(a.agree >= 0.9, `int8 top-1 agreement ${a.agree} < 0.9`);
  } finally {
    q.model.dispose();
    f.model.dispose();
  }
});

test('stories260K int8 vs f32: free-running greedy agreement over 64 steps (reported)', { skip: noCpu || shared }, async (t) => {
  const dir = join(work, 'stories260K-greedy');
  convertLlama2c(sharedPath('stories260K/stories260K.bin'), sharedPath('stories260K/tok512.bin'), dir);
  const be = backend!;
  const f = await loadModel(dir, be);
  const q = await loadModel(dir, be, { quantize: 'int8' });
  try {
    const bos = f.config.bosTokenId ?? 1;
    const [a, b] = [await greedy(f, [bos], 64), await greedy(q, [bos], 64)];
    let prefix = 0;
    while (prefix < a.length && a[prefix] === b[prefix]) prefix++;
    const same = a.filter((x, i) => x === b[i]).length;
    t.diagnostic(`greedy f32 vs int8 over 64 steps: first ${prefix - 1} generated tokens identical, ${same - 1}/64 positions equal`);
    // Measured (avx512 VM): the first 61 of 64 generated tokens identical. Free-running sequences diverge for good at the first flip, so
    // only a floor is asserted: a broken int8 path loses the text within a few tokens.
    assert.ok(prefix - 1 >= 8, `int8 greedy diverged from f32 after ${prefix - 1} tokens`);
  } finally {
    q.model.dispose();
    f.model.dispose();
  }
});

const Q8_0_TITLE = 'stories260K --quantize q8_0 (Q8_0 blocks, int8 activations): top-1 agreement and perplexity vs f32';
test(Q8_0_TITLE, { skip: noCpu || shared }, async (t) => {
  const dir = join(work, 'stories260K-q8_0');
  convertLlama2c(sharedPath('stories260K/stories260K.bin'), sharedPath('stories260K/tok512.bin'), dir);
  const be = backend!;
  const f = await loadModel(dir, be);
  const before = be.memoryStats();
  const q = await loadModel(dir, be, { quantize: 'q8_0' });
  try {
    const bos = f.config.bosTokenId ?? 1;
    const seq = (await greedy(f, [bos], STEPS)).slice(0, STEPS);
    const a = await agreement(f, q, seq);
    const [ga, gb] = [await greedy(f, [bos], 64), await greedy(q, [bos], 64)];
    let prefix = 0;
    while (prefix < ga.length && ga[prefix] === gb[prefix]) prefix++;
    const tok = loadTokenizer(dir);
    const ids = [bos, ...(await tok.encode(readFileSync(FIXTURE, 'utf8').trim(), { addSpecialTokens: false }))];
    const [pf, pq] = [await perplexity(f, ids), await perplexity(q, ids)];
    t.diagnostic(
      `q8_0: teacher-forced agreement ${(a.agree * 100).toFixed(1)}% (max |dlogit| ${a.maxDiff.toFixed(3)}); ` +
        `free-running greedy: first ${prefix - 1} of 64 identical; ` +
        `ppl f32 ${pf.toFixed(4)}, q8_0 ${pq.toFixed(4)} (${((pq / pf - 1) * 100).toFixed(2)}%)`,
    );
    // Same bounds as int8: Q8_0 also quantizes the activations (per 32), a little more error per dot.
    assert.ok(a.agree >= 0.95, `q8_0 top-1 agreement ${a.agree} < 0.95`);
    assert.ok(Math.abs(pq / pf - 1) <= 0.02, `perplexity q8_0 ${pq} vs f32 ${pf}: more than 2% apart`);
  } finally {
    q.model.dispose();
    assert.deepEqual(be.memoryStats(), before, 'the q8_0 model freed every tensor');
    f.model.dispose();
  }
});
