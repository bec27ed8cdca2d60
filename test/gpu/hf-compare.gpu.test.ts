// Whole-model check against PyTorch + transformers on the same safetensors (made on the GPU machine
// by scripts/gpu/gen_hf_model.py; reference rows by scripts/gpu/hf_reference.py). For each directory
// in TOKENMILL_HF_MODELS (comma-separated): bf16 on CUDA, prefill the prompt, then decode the HF
// tokens one at a time (teacher forcing) and compare every step's logits with HF bf16 and f32 rows.
// Pass: >= 99% top-1 agreement at bf16-level error, or no further from f32 than PyTorch bf16 itself;
// for a checkpoint made with --init well-conditioned (tm_gen.json) only the first (a non-chaotic
// model: the >= 99% criterion is meaningful). TOKENMILL_HF_INFO_ONLY=1: report, assert nothing.
// Records device memory before load and after dispose. Skipped without a GPU or the env variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadModel } from '../../src/model/loader.js';
import { ForwardDriver } from '../model/forward-driver.js';
import { createCudaBackend } from '../../src/runtime/select.js';
import { argmaxOf, cudaSkip, deviceFreeBytes, relErr, writeResult } from './gpu-env.js';

const dirs = (process.env.TOKENMILL_HF_MODELS ?? '').split(',').filter((d) => d !== '');

interface RefInfo {
  prompt: number[];
  generated: number[];
  steps: number;
  vocab: number;
  hf_bf16_vs_f32: { top1_agreement: number; rel_err_mean: number; rel_err_max: number };
}

function readRows(path: string): Float32Array | null {
  if (!existsSync(path)) return null;
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function stats(xs: number[]): { mean: number; p50: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { mean: xs.reduce((a, b) => a + b, 0) / xs.length, p50: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
}

for (const dir of dirs.length > 0 ? dirs : ['(none)']) {
  const skip = cudaSkip || (dirs.length === 0 ? 'TOKENMILL_HF_MODELS not set (run scripts/gpu/run-suite.sh)' : false);
  test(`${basename(dir)}: bf16 CUDA vs transformers, teacher-forced`, { skip }, async () => {
    const info = JSON.parse(readFileSync(join(dir, 'tm_ref.json'), 'utf8')) as RefInfo;
    const genPath = join(dir, 'tm_gen.json');
    const init = existsSync(genPath) ? ((JSON.parse(readFileSync(genPath, 'utf8')) as { init?: string }).init ?? 'default') : 'default';
    const infoOnly = process.env.TOKENMILL_HF_INFO_ONLY === '1';
    const hfBf16 = readRows(join(dir, 'tm_ref_bf16.bin'))!;
    const hfF32 = readRows(join(dir, 'tm_ref_f32.bin'));
    const V = info.vocab;
    const free0 = deviceFreeBytes();
    const backend = createCudaBackend({ dtype: 'bf16' });
    const t0 = Date.now();
    const { model } = await loadModel(dir, backend);
    const loadMs = Date.now() - t0;
    const driver = new ForwardDriver(model, { maxSeqLen: info.prompt.length + info.steps + 16 });
    const errBf16: number[] = [];
    const errF32: number[] = [];
    let agreeBf16 = 0;
    let agreeF32 = 0;
    let agreeMargin = 0;
    let numMargin = 0;
    try {
      let logits = await driver.prefill(info.prompt);
      for (let i = 0; i < info.steps; i++) {
        if (i > 0) logits = await driver.decode(info.generated[i - 1]!);
        const off = i * V;
        const mine = argmaxOf(logits);
        errBf16.push(relErr(logits, hfBf16.subarray(off, off + V)));
        if (mine === argmaxOf(hfBf16, off, V)) agreeBf16++;
        if (hfF32 !== null) {
          const row = hfF32.subarray(off, off + V);
          errF32.push(relErr(logits, row));
          const top = argmaxOf(row);
          if (mine === top) agreeF32++;
          // Rows where f32 has a clear winner (margin over the runner-up > 1% of the row's spread).
          let second = -Infinity;
          let sq = 0;
          for (let v = 0; v < V; v++) {
            sq += row[v]! * row[v]!;
            if (v !== top && row[v]! > second) second = row[v]!;
          }
          if (row[top]! - second > 0.01 * Math.sqrt(sq / V)) {
            numMargin++;
            if (mine === top) agreeMargin++;
          }
        }
      }
    } finally {
      driver.dispose();
      model.dispose();
      backend.dispose();
    }
    const free1 = deviceFreeBytes();
    const n = info.steps;
    const result = {
      model: basename(dir),
      init,
      infoOnly,
      steps: n,
      vocab: V,
      loadMs,
      top1VsHfBf16: agreeBf16 / n,
      relErrVsHfBf16: stats(errBf16),
      top1VsHfF32: hfF32 ? agreeF32 / n : null,
      relErrVsHfF32: hfF32 ? stats(errF32) : null,
      top1VsHfF32ClearMargin: numMargin ? { agreement: agreeMargin / numMargin, rows: numMargin } : null,
      hfBf16VsHfF32: info.hf_bf16_vs_f32,
      deviceMemory: { freeBeforeLoadBytes: free0, freeAfterDisposeBytes: free1, diffBytes: free0 - free1 },
    };
    writeResult(`hf-compare-${basename(dir)}`, result);
    console.log(JSON.stringify(result));
    // Random weights give near-flat logits and deep random nets amplify rounding, so near-ties flip
    // under any bf16 rounding (PyTorch's own bf16 run disagrees with its f32 run on some rows).
    // Pass: >= 99% top-1 agreement with HF bf16 at bf16-level error, or at least as close to the
    // f32 truth as PyTorch bf16 itself (top-1 within 2 rows, mean relative error within 10%).
    const hf = info.hf_bf16_vs_f32;
    const strict = agreeBf16 / n >= 0.99 && stats(errBf16).mean <= 0.05;
    const asGoodAsTorch = hfF32 !== null && agreeF32 / n >= hf.top1_agreement - 2 / n && stats(errF32).mean <= 1.1 * hf.rel_err_mean;
    if (infoOnly) return;
    assert.ok(
      strict || (init !== 'well-conditioned' && asGoodAsTorch),
      `top-1 vs HF bf16 ${((agreeBf16 / n) * 100).toFixed(1)}%, vs f32 ${((agreeF32 / n) * 100).toFixed(1)}% (HF bf16 vs f32 ` +
        `${(hf.top1_agreement * 100).toFixed(1)}%); ` +
        `rel err vs f32 ${stats(errF32).mean.toFixed(4)} (HF bf16 ${hf.rel_err_mean.toFixed(4)})`,
    );
  });
}
