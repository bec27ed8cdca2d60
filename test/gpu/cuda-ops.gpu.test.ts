// CUDA-specific op checks beyond the shared conformance suite: every matmul path (GEMV, tiled,
// cuBLASLt) against the reference, the split-K (flash-decoding) and tiled-prefill attention paths
// at long contexts and large head dims, device sampling semantics, and device memory returning to
// its starting figure after dispose().
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createCudaBackend, createReferenceBackend } from '../../src/runtime/select.js';
import type { Backend } from '../../src/runtime/backend.js';
import { Harness, Rng } from '../conformance/helpers.js';
import { buildPaged, type SeqSpec } from '../conformance/paged-scenario.js';
import { cudaSkip, deviceFreeBytes, writeResult } from './gpu-env.js';

type Cuda = ReturnType<typeof createCudaBackend>;

describe('cuda ops beyond conformance', { skip: cudaSkip }, () => {
  let be: Cuda;
  let ref: Backend;
  before(() => {
    be = createCudaBackend({ dtype: 'bf16' });
    ref = createReferenceBackend();
  });
  after(() => {
    be?.dispose();
    ref?.dispose();
  });

  const MM: [number, number, number][] = [
    [1, 4096, 1000],
    [3, 4096, 257],
    [8, 1024, 512],
    [9, 512, 384],
    [64, 4096, 512],
    [130, 1000, 200],
  ];
  for (const mode of ['own', 'cublaslt', 'auto'] as const) {
    for (const [T, K, N] of MM) {
      it(`matmul ${mode} T=${T} K=${K} N=${N}`, async (t) => {
        const h = new Harness(be, ref, new Rng(T * 7919 + K + N), t);
        try {
          if (mode === 'cublaslt' && !be.info().cublasLt) return t.skip('cuBLASLt not loaded');
          be.matmulMode = mode;
          const x = h.act([T, K], h.rng.normals(T * K));
          const w = h.typed([N, K], 'bf16', h.rng.normals(N * K, 0.05));
          for (const outDType of ['bf16', 'f32'] as const) {
            const out = h.out([T, N], outDType);
            be.matmul(out.be, x.be, w.be, null);
            ref.matmul(out.ref, x.ref, w.ref, null);
            t.diagnostic(`path ${be.lastMatmulPath}`);
            if (mode === 'own') assert.equal(be.lastMatmulPath, T <= 8 && K % 8 === 0 ? 'gemv' : 'tiled');
            if (mode === 'cublaslt' && K % 8 === 0 && N % 8 === 0) assert.equal(be.lastMatmulPath, 'cublaslt');
            await h.expectClose(`out ${outDType}`, out, h.tol(2 * Math.sqrt(K) * 0.05));
          }
        } finally {
          be.matmulMode = 'auto';
          h.freeAll();
        }
      });
    }
  }

  const ATT: { name: string; seqs: SeqSpec[]; H: number; Hkv: number; Dh: number; bs: number; window?: number }[] = [
    {
      name: 'long decode split-K, GQA 32/8, Dh 128',
      seqs: [
        { ctx: 3000, qLen: 1 },
        { ctx: 1700, qLen: 1 },
      ],
      H: 32,
      Hkv: 8,
      Dh: 128,
      bs: 16,
    },
    { name: 'decode MHA 32/32 Dh 128 ctx 700', seqs: [{ ctx: 700, qLen: 1 }], H: 32, Hkv: 32, Dh: 128, bs: 16 },
    {
      name: 'decode GQA 16/1 (two head chunks)',
      seqs: [
        { ctx: 300, qLen: 1 },
        { ctx: 5, qLen: 1 },
      ],
      H: 16,
      Hkv: 1,
      Dh: 64,
      bs: 8,
    },
    {
      name: 'prefill tile Dh 128, chunked (ctx 300, 100 new)',
      seqs: [
        { ctx: 300, qLen: 100 },
        { ctx: 40, qLen: 40 },
      ],
      H: 8,
      Hkv: 2,
      Dh: 128,
      bs: 16,
    },
    { name: 'prefill tile Dh 64 sliding window 50', seqs: [{ ctx: 200, qLen: 77 }], H: 4, Hkv: 4, Dh: 64, bs: 16, window: 50 },
    { name: 'prefill Dh 256 (split kernel)', seqs: [{ ctx: 90, qLen: 90 }], H: 4, Hkv: 2, Dh: 256, bs: 16 },
    {
      name: 'decode Dh 80 (scalar K loads)',
      seqs: [
        { ctx: 600, qLen: 1 },
        { ctx: 33, qLen: 3 },
      ],
      H: 6,
      Hkv: 3,
      Dh: 80,
      bs: 32,
    },
  ];
  for (const a of ATT) {
    it(`attention ${a.name}`, async (t) => {
      const h = new Harness(be, ref, new Rng(a.Dh * 31 + a.seqs[0]!.ctx), t);
      try {
        const sc = buildPaged(h, { seqs: a.seqs, H: a.H, Hkv: a.Hkv, Dh: a.Dh, blockSize: a.bs, unused: 'nan', tableFill: 'huge' });
        const q = h.act([sc.numTokens, a.H, a.Dh], h.rng.normals(sc.numTokens * a.H * a.Dh));
        const out = h.out([sc.numTokens, a.H, a.Dh]);
        const scale = 1 / Math.sqrt(a.Dh);
        be.attention(out.be, q.be, { k: sc.k.be, v: sc.v.be }, sc.meta.be, scale, a.window ?? 0);
        ref.attention(out.ref, q.ref, { k: sc.k.ref, v: sc.v.ref }, sc.meta.ref, scale, a.window ?? 0);
        await h.expectClose('out', out, h.tol(1));
      } finally {
        h.freeAll();
      }
    });
  }

  it('sampling: temperature 0 and top-k 1 are argmax; top-k / top-p sets respected; seeded', async () => {
    const V = 5000;
    const S = 64;
    const rng = new Rng(5);
    const row = rng.normals(V, 3);
    const logits = be.alloc([S, V], 'f32');
    const out = be.alloc([S], 'i32');
    try {
      const all = new Float32Array(S * V);
      for (let s = 0; s < S; s++) all.set(row, s * V);
      be.upload(logits, all);
      const order = [...row.keys()].sort((a, b) => row[b]! - row[a]!);
      const base = {
        temperature: 1,
        topK: 0,
        topP: 1,
        minP: 0,
        repetitionPenalty: 1,
        presencePenalty: 0,
        frequencyPenalty: 0,
        history: new Int32Array(0),
        numGenerated: 0,
      };
      const draw = async (over: Partial<typeof base>, seedOf: (s: number) => number = (s) => s + 1): Promise<Int32Array> => {
        be.sample(
          out,
          logits,
          Array.from({ length: S }, (_, s) => ({ ...base, ...over, seed: seedOf(s) })),
        );
        return be.readInt32(out);
      };
      assert.ok((await draw({ temperature: 0 })).every((x) => x === order[0]));
      assert.ok((await draw({ topK: 1 })).every((x) => x === order[0]));
      const top5 = new Set(order.slice(0, 5));
      const k5 = await draw({ topK: 5 });
      assert.ok(
        k5.every((x) => top5.has(x)),
        'top-k 5 drew outside the top 5',
      );
      assert.ok(new Set(k5).size > 1, 'top-k 5 with 64 seeds drew a single token');
      // top-p: the nucleus is the shortest prefix of `order` with mass >= p.
      const mx = row[order[0]!]!;
      const probs = order.map((i) => Math.exp(row[i]! - mx));
      const z = probs.reduce((a, b) => a + b, 0);
      let acc = 0;
      let n = 0;
      while (acc < 0.5 * z) acc += probs[n++]!;
      const nucleus = new Set(order.slice(0, n));
      const p5 = await draw({ topP: 0.5 });
      assert.ok(
        p5.every((x) => nucleus.has(x)),
        `top-p 0.5 drew outside the ${n}-token nucleus`,
      );
      const again = await draw({ topP: 0.5 });
      assert.deepEqual([...again], [...p5], 'same seeds, same tokens');
      // Repetition penalty on the argmax token (in history) with greedy picks the runner-up if it wins.
      const hist = Int32Array.of(order[0]!);
      const pen = await draw({ temperature: 0, repetitionPenalty: 1e6, history: hist, numGenerated: 0 });
      assert.ok(
        pen.every((x) => x === order[1]),
        'repetition penalty did not demote the top token',
      );
      const freq = await draw({ temperature: 0, frequencyPenalty: 1e4, history: hist, numGenerated: 1 });
      assert.ok(
        freq.every((x) => x === order[1]),
        'frequency penalty did not demote the top token',
      );
      const freqPrompt = await draw({ temperature: 0, frequencyPenalty: 1e4, history: hist, numGenerated: 0 });
      assert.ok(
        freqPrompt.every((x) => x === order[0]),
        'frequency penalty must ignore prompt tokens',
      );
      // Distribution: V=4 tokens, 4096 draws, frequencies within 4 sigma of softmax.
      const small = Float32Array.of(0, 1, 2, -1);
      const R = 4096;
      const lg = be.alloc([R, 4], 'f32');
      const o2 = be.alloc([R], 'i32');
      try {
        const buf = new Float32Array(R * 4);
        for (let r = 0; r < R; r++) buf.set(small, r * 4);
        be.upload(lg, buf);
        be.sample(
          o2,
          lg,
          Array.from({ length: R }, (_, r) => ({ ...base, seed: 1000 + r * 7 })),
        );
        const got = await be.readInt32(o2);
        const zz = [...small].reduce((a, b) => a + Math.exp(b), 0);
        const counts = [0, 0, 0, 0];
        for (const x of got) counts[x]!++;
        for (let i = 0; i < 4; i++) {
          const p = Math.exp(small[i]!) / zz;
          const sd = Math.sqrt(R * p * (1 - p));
          assert.ok(
            Math.abs(counts[i]! - R * p) < 4 * sd,
            `token ${i}: ${counts[i]} draws, expected ${(R * p).toFixed(0)} +- ${sd.toFixed(0)}`,
          );
        }
      } finally {
        be.free(lg);
        be.free(o2);
      }
    } finally {
      be.free(logits);
      be.free(out);
    }
  });
});

async function exercise(b: Cuda): Promise<void> {
  const x = b.alloc([64, 4096], 'bf16');
  const w = b.alloc([4096, 4096], 'bf16');
  const o = b.alloc([64, 4096], 'bf16');
  b.upload(x, new Float32Array(64 * 4096).fill(0.5));
  b.upload(w, new Float32Array(4096 * 4096).fill(0.01));
  b.matmul(o, x, w, null);
  b.matmul(b.view(o, [1, 4096]), b.view(x, [1, 4096]), w, null);
  await b.read(b.view(o, [8]));
  for (const t of [x, w, o]) b.free(t);
}

describe('cuda device memory', { skip: cudaSkip }, () => {
  it('dispose() returns device memory to its starting figure', async () => {
    const warm = createCudaBackend(); // first use loads modules and cuBLASLt once per process
    await exercise(warm);
    warm.dispose();
    const start = deviceFreeBytes();
    const b = createCudaBackend();
    await exercise(b);
    const during = deviceFreeBytes();
    b.dispose();
    const end = deviceFreeBytes();
    writeResult('memory', { startFreeBytes: start, duringFreeBytes: during, endFreeBytes: end, diffBytes: start - end });
    assert.ok(during < start, 'the backend took no device memory?');
    assert.ok(Math.abs(start - end) <= 2 * 2 ** 20, `free before ${start}, after dispose ${end} (diff ${start - end} bytes)`);
  });
});
