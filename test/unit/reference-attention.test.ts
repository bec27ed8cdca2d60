// The reference's paged varlen attention against an independent dense formulation: random steps
// (sequences with context and new tokens, shuffled blocks, GQA, sliding windows) written through
// kvWrite, then compared with plain per-sequence softmax(QK^T)V. Also: bad metadata is rejected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceBackend } from '../../src/runtime/reference/reference-backend.js';
import type { AttentionMetadata, Backend, Tensor } from '../../src/runtime/backend.js';
import { Rng } from '../conformance/helpers.js';

interface Step {
  readonly H: number;
  readonly Hkv: number;
  readonly Dh: number;
  readonly bs: number;
  readonly window: number;
  readonly seqs: { ctx: number; qLen: number }[];
}

function randomStep(rng: Rng): Step {
  const Hkv = [1, 2, 3][rng.int(0, 3)]!;
  const H = Hkv * [1, 2, 4][rng.int(0, 3)]!;
  const seqs = Array.from({ length: rng.int(1, 5) }, () => {
    const ctx = rng.int(1, 60);
    return { ctx, qLen: rng.next() < 0.5 ? 1 : rng.int(1, ctx + 1) };
  });
  return { H, Hkv, Dh: 2 * rng.int(1, 9), bs: rng.int(1, 9), window: rng.next() < 0.3 ? rng.int(1, 20) : 0, seqs };
}

/** Dense attention for one query row over keys [ctx, Hkv, Dh] of its own sequence. */
function dense(q: Float32Array, keys: Float32Array, vals: Float32Array, pos: number, s: Step, scale: number): Float64Array {
  const { H, Hkv, Dh, window } = s;
  const out = new Float64Array(H * Dh);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / (H / Hkv));
    const first = window > 0 ? Math.max(0, pos - window + 1) : 0;
    const sc: number[] = [];
    for (let p = first; p <= pos; p++) {
      let d = 0;
      for (let i = 0; i < Dh; i++) d += q[h * Dh + i]! * keys[(p * Hkv + g) * Dh + i]!;
      sc.push(d * scale);
    }
    const m = Math.max(...sc);
    const w = sc.map((x) => Math.exp(x - m));
    const z = w.reduce((a, b) => a + b, 0);
    for (let p = first; p <= pos; p++) {
      for (let i = 0; i < Dh; i++) out[h * Dh + i] = out[h * Dh + i]! + (w[p - first]! / z) * vals[(p * Hkv + g) * Dh + i]!;
    }
  }
  return out;
}

function upload(be: Backend, shape: number[], v: Float32Array | Int32Array): Tensor {
  const t = be.alloc(shape, v instanceof Int32Array ? 'i32' : 'f32');
  be.upload(t, v);
  return t;
}

test('paged varlen attention equals dense per-sequence attention (60 random steps)', async () => {
  const rng = new Rng(1234);
  for (let iter = 0; iter < 60; iter++) {
    const s = randomStep(rng);
    const be = createReferenceBackend();
    const row = s.Hkv * s.Dh;
    const blocksOf = s.seqs.map((q) => Math.ceil(q.ctx / s.bs));
    const numBlocks = blocksOf.reduce((a, b) => a + b, 0) + 1;
    const free = rng.shuffle(Array.from({ length: numBlocks }, (_, i) => i));
    const width = Math.max(...blocksOf);
    const table = new Int32Array(s.seqs.length * width).fill(-1);
    const cache = { k: be.alloc([numBlocks, s.bs, s.Hkv, s.Dh], 'f32'), v: be.alloc([numBlocks, s.bs, s.Hkv, s.Dh], 'f32') };
    const seqKV = s.seqs.map((q, i) => {
      for (let b = 0; b < blocksOf[i]!; b++) table[i * width + b] = free.pop()!;
      const k = rng.normals(q.ctx * row);
      const v = rng.normals(q.ctx * row);
      const slots = Int32Array.from({ length: q.ctx }, (_, p) => table[i * width + Math.floor(p / s.bs)]! * s.bs + (p % s.bs));
      be.kvWrite(cache, upload(be, [q.ctx, s.Hkv, s.Dh], k), upload(be, [q.ctx, s.Hkv, s.Dh], v), upload(be, [q.ctx], slots));
      return { k, v };
    });
    const qsl = [0];
    for (const q of s.seqs) qsl.push(qsl[qsl.length - 1]! + q.qLen);
    const T = qsl[qsl.length - 1]!;
    const qv = rng.normals(T * s.H * s.Dh);
    const meta: AttentionMetadata = {
      numSeqs: s.seqs.length,
      maxQueryLen: Math.max(...s.seqs.map((q) => q.qLen)),
      maxSeqLen: Math.max(...s.seqs.map((q) => q.ctx)),
      queryStartLoc: upload(be, [qsl.length], Int32Array.from(qsl)),
      seqLens: upload(be, [s.seqs.length], Int32Array.from(s.seqs.map((q) => q.ctx))),
      blockTables: upload(be, [s.seqs.length, width], table),
    };
    const out = be.alloc([T, s.H, s.Dh], 'f32');
    const scale = 1 / Math.sqrt(s.Dh);
    be.attention(out, upload(be, [T, s.H, s.Dh], qv), cache, meta, scale, s.window);
    const got = await be.read(out);
    s.seqs.forEach((q, i) => {
      for (let j = 0; j < q.qLen; j++) {
        const t = qsl[i]! + j;
        const rowLen = s.H * s.Dh;
        const want = dense(qv.subarray(t * rowLen, (t + 1) * rowLen), seqKV[i]!.k, seqKV[i]!.v, q.ctx - q.qLen + j, s, scale);
        for (let e = 0; e < rowLen; e++) {
          assert.ok(
            Math.abs(got[t * rowLen + e]! - want[e]!) <= 1e-5 * (1 + Math.abs(want[e]!)),
            `iter ${iter} ${JSON.stringify(s)} token ${t} elem ${e}`,
          );
        }
      }
    });
    be.dispose();
  }
});

test('attention rejects inconsistent metadata', () => {
  const be = createReferenceBackend();
  const cache = { k: be.alloc([2, 4, 1, 2], 'f32'), v: be.alloc([2, 4, 1, 2], 'f32') };
  const q = be.alloc([2, 1, 2], 'f32');
  const out = be.alloc([2, 1, 2], 'f32');
  const m = (qsl: number[], lens: number[], table: number[], extra: Partial<AttentionMetadata> = {}): AttentionMetadata => ({
    numSeqs: lens.length,
    maxQueryLen: 8,
    maxSeqLen: 8,
    queryStartLoc: upload(be, [qsl.length], Int32Array.from(qsl)),
    seqLens: upload(be, [lens.length], Int32Array.from(lens)),
    blockTables: upload(be, [lens.length, table.length / lens.length], Int32Array.from(table)),
    ...extra,
  });
  assert.doesNotThrow(() => be.attention(out, q, cache, m([0, 2], [5], [1, 0]), 1, 0));
  assert.throws(() => be.attention(out, q, cache, m([0, 1], [5], [1, 0]), 1, 0), /numTokens/);
  assert.throws(() => be.attention(out, q, cache, m([0, 2], [1], [1, 0]), 1, 0), /seqLen/);
  assert.throws(() => be.attention(out, q, cache, m([0, 2], [5], [1, 2]), 1, 0), /block table entry/);
  assert.throws(() => be.attention(out, q, cache, m([0, 2], [9], [1, 0], { maxSeqLen: 16 }), 1, 0), /blocks/);
  assert.throws(() => be.attention(out, q, cache, m([0, 2], [5], [1, 0], { maxQueryLen: 1 }), 1, 0), /maxQueryLen/);
  assert.throws(() => be.attention(out, q, cache, m([0, 2], [5], [1, 0]), 1, -1), /slidingWindow/);
  assert.throws(() => be.attention(q, q, cache, m([0, 2], [5], [1, 0]), 1, 0), /overlaps/);
  assert.throws(() => be.kvWrite(cache, q, q, upload(be, [2], Int32Array.from([0, 8]))), /outside the cache/);
});
