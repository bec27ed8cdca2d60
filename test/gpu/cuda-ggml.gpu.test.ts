// CUDA kernels for GGUF block weights (native/cuda/gemm_ggml.cu) beyond the shared conformance suite
// (test/conformance/matmul-ggml.test.ts, which checks every format against the spec): they are off by
// default (a quantized GGUF is refused on CUDA, as before they existed); with ggmlKernels a seeded
// GGUF model of each kind gives the CPU backend's (or the reference's) logits on prefill (the batched path) and decode
// (the GEMV); the path names; decode GEMV timings at a 7B-like shape (information, no assertion).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import type { GgufQuantOption } from '../../src/model/convert/ggml-mixture.js';
import { loadModel, type LoadedModel } from '../../src/model/loader.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { quantizeMatrix } from '../../src/model/convert/ggml-quantize.js';
import { ggmlRowBytes, type GgmlQuantType } from '../../src/runtime/ggml-format.js';
import { cpuAddonAvailable, createCpuBackend, createCudaBackend, createReferenceBackend } from '../../src/runtime/select.js';
import type { Backend } from '../../src/runtime/backend.js';
import { TokenmillError } from '../../src/util/errors.js';
import { ForwardDriver } from '../model/forward-driver.js';
import { Rng } from '../conformance/helpers.js';
import { argmaxOf, cudaSkip, relErr, writeResult } from './gpu-env.js';

// Every matrix K (256, 512) a multiple of 256, so the K formats are used as named (no fallback).
const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 256,
  intermediate_size: 512,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 512,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: false,
};
const KINDS: readonly GgufQuantOption[] = ['q4_k_m', 'q5_k', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0'];
const PROMPT = [1, 17, 204, 33, 99, 5, 311, 42, 7, 480, 64, 128]; // 12 tokens: past the GEMV's 8

async function run(m: LoadedModel): Promise<{ prefill: Float32Array; decode: Float32Array[] }> {
  const d = new ForwardDriver(m.model, { maxSeqLen: 64 });
  try {
    const prefill = await d.prefill(PROMPT, { allLogits: true });
    const decode = [await d.decode(3), await d.decode(250)];
    return { prefill, decode };
  } finally {
    d.dispose();
  }
}

describe('cuda ggml kernels', { skip: cudaSkip }, () => {
  let work = '';
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'tm-cuda-ggml-'));
    writeRandomModel(join(work, 'hf'), CONFIG, { seed: 5, init: 'well-conditioned' });
    for (const k of KINDS) convertToGguf(join(work, 'hf'), join(work, `${k}.gguf`), { type: k });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('off by default: no matmulGgml, and a quantized GGUF is refused with backend_unavailable naming the switch', async () => {
    const be = createCudaBackend();
    try {
      assert.equal(be.matmulGgml, undefined);
      assert.equal(be.embeddingGgml, undefined);
      await assert.rejects(loadModel(join(work, 'q4_k_m.gguf'), be), (e: unknown) => {
        assert.ok(e instanceof TokenmillError && e.code === 'backend_unavailable', String(e));
        assert.match(e.message, /TOKENMILL_CUDA_GGML=1/);
        return true;
      });
    } finally {
      be.dispose();
    }
  });

  for (const kind of KINDS) {
    it(`${kind} GGUF: CUDA (f32, ggmlKernels) logits = the CPU backend's (the reference's without it), prefill and decode`, async (t) => {
      // The GPU suite ships no CPU addon (scripts/gpu/prepare.sh): there the reference is the baseline.
      const cpu: Backend = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 4 }) : createReferenceBackend();
      const cuda = createCudaBackend({ dtype: 'f32', ggmlKernels: true });
      try {
        const file = join(work, `${kind}.gguf`);
        const [a, b] = [await run(await loadModel(file, cpu)), await run(await loadModel(file, cuda))];
        const V = CONFIG.vocab_size;
        const errs = [relErr(b.prefill, a.prefill), ...b.decode.map((x, i) => relErr(x, a.decode[i]!))];
        let agree = 0;
        for (let p = 0; p < PROMPT.length; p++) agree += argmaxOf(b.prefill, p * V, V) === argmaxOf(a.prefill, p * V, V) ? 1 : 0;
        t.diagnostic(
          `${kind}: relErr prefill ${errs[0]!.toExponential(2)}, decode ${errs.slice(1).map((e) => e.toExponential(2))}; top-1 ${agree}/12`,
        );
        // Same activation quantization on both sides; the rest (norms, attention, f32 sums) differs in order only.
        for (const e of errs) assert.ok(e < 1e-3, `${kind}: relative error ${e} vs the CPU backend`);
        assert.equal(agree, PROMPT.length, `${kind}: top-1 agreement`);
      } finally {
        cuda.dispose();
        cpu.dispose();
      }
    });
  }

  it('paths: gemv_ggml for T <= 8, batched_ggml above; decode GEMV timings at K = N = 4096 (information)', async () => {
    const cuda = createCudaBackend({ dtype: 'bf16', ggmlKernels: true });
    const [K, N] = [4096, 4096];
    const rng = new Rng(11);
    const timings: Record<string, number> = {};
    try {
      const x = cuda.alloc([16, K], 'bf16');
      cuda.upload(x, rng.normals(16 * K));
      const out = cuda.alloc([16, N], 'bf16');
      for (const type of ['Q4_0', 'Q4_K', 'Q6_K'] as GgmlQuantType[]) {
        const bytes = quantizeMatrix(type, rng.normals(N * K, 0.02), N, K);
        const w = cuda.alloc([N, ggmlRowBytes(type, K)], 'i8');
        cuda.upload(w, new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        const x1 = cuda.view(x, [1, K]);
        const o1 = cuda.view(out, [1, N]);
        cuda.matmulGgml!(o1, x1, w, type, null);
        assert.equal(cuda.lastMatmulPath, 'gemv_ggml');
        cuda.matmulGgml!(out, x, w, type, null);
        assert.equal(cuda.lastMatmulPath, 'batched_ggml');
        await cuda.synchronize();
        const reps = 200;
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) cuda.matmulGgml!(o1, x1, w, type, null);
        await cuda.synchronize();
        timings[type] = ((performance.now() - t0) * 1000) / reps;
        cuda.free(w);
      }
      cuda.free(out);
      cuda.free(x);
      writeResult('cuda-ggml-gemv', { K, N, usPerCall: timings, note: 'T=1, bf16 x, includes the activation quantize launch' });
    } finally {
      cuda.dispose();
    }
  });
});
