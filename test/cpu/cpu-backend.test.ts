// CPU backend specifics the shared conformance suite does not cover: batch invariance (a row's
// result is bit-identical whatever T, the other rows, the ISA tiling or the thread count), native
// errors surfacing as TokenmillError('native_error') without killing the backend, and memory
// accounting. Skips (with the reason) when the addon is not built; fails then under CI=true.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Backend, Tensor } from '../../src/runtime/backend.js';
import { cpuAddonAvailable, createCpuBackend } from '../../src/runtime/select.js';
import { TokenmillError } from '../../src/util/errors.js';

const avail = cpuAddonAvailable();
const skip = avail.available ? false : `cpu addon: ${avail.reason}`;
if (skip && process.env.CI === 'true') throw new Error(`CI: ${skip}`);

function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 2;
  }
  return out;
}

function upload(b: Backend, shape: number[], data: Float32Array | Int32Array, dtype: 'f32' | 'bf16' | 'f16' | 'i32' = 'f32'): Tensor {
  const t = b.alloc(shape, dtype);
  b.upload(t, data);
  return t;
}

describe('cpu backend', { skip }, () => {
  // The best ISA and forced avx2 (its own 8-row decode GEMV); a CPU without avx2 runs the best twice.
  it('matmul rows are bit-identical for any T, weight dtype and thread count (best ISA and avx2)', async () => {
    const K = 300;
    const N = 1000;
    const maxT = 37;
    const x = rand(maxT * K, 1);
    const w = rand(N * K, 2);
    for (const cpuIsa of [undefined, 'avx2'] as const) {
      let reference: Float32Array | null = null;
      for (const threads of [1, 2]) {
        const b = createCpuBackend({ numThreads: threads, ...(cpuIsa !== undefined ? { cpuIsa } : {}) });
        for (const dtype of ['f32', 'bf16', 'f16'] as const) {
          const wt = upload(b, [N, K], w, dtype);
          const rows: Float32Array[] = [];
          for (const T of [1, 2, 5, 37]) {
            const xt = upload(b, [T, K], x.subarray((maxT - T) * K)); // last T rows of x
            const out = b.alloc([T, N], 'f32');
            b.matmul(out, xt, wt, null);
            rows.push((await b.read(out)).subarray((T - 1) * N)); // the last row of x each time
          }
          for (const r of rows) assert.deepEqual(r, rows[0]);
          if (dtype === 'f32') {
            if (reference === null) reference = rows[0]!;
            else assert.deepEqual(rows[0], reference, 'thread count changed results');
          }
        }
        b.dispose();
      }
    }
  });

  it('every row of a batched matmul equals that row alone (all tile shapes and decode/prefill paths)', async () => {
    const K = 300;
    const N = 200;
    const maxT = 70;
    const x = rand(maxT * K, 3);
    const w = rand(N * K, 4);
    for (const threads of [1, 2]) {
      const b = createCpuBackend({ numThreads: threads });
      for (const dtype of ['f32', 'bf16'] as const) {
        const wt = upload(b, [N, K], w, dtype);
        const alone: Float32Array[] = [];
        const o1 = b.alloc([1, N], 'f32');
        for (let r = 0; r < maxT; r++) {
          const xr = upload(b, [1, K], x.subarray(r * K, (r + 1) * K));
          b.matmul(o1, xr, wt, null);
          alone.push(await b.read(o1));
        }
        for (const T of [8, 32, 64, 70]) {
          const out = b.alloc([T, N], 'f32');
          b.matmul(out, upload(b, [T, K], x.subarray(0, T * K)), wt, null);
          const got = await b.read(out);
          for (let r = 0; r < T; r++)
            assert.deepEqual(got.subarray(r * N, (r + 1) * N), alone[r], `${dtype}, T ${T}, row ${r}, ${threads} threads`);
        }
      }
      b.dispose();
    }
  });

  it('attention for one sequence is bit-identical alone and batched with others', async () => {
    const b = createCpuBackend({ numThreads: 2 });
    const [H, Hkv, Dh, BS, NB] = [4, 2, 64, 16, 64];
    const k = upload(b, [NB, BS, Hkv, Dh], rand(NB * BS * Hkv * Dh, 3));
    const v = upload(b, [NB, BS, Hkv, Dh], rand(NB * BS * Hkv * Dh, 4));
    const cache = { k, v };
    const run = async (lens: number[], qLens: number[]): Promise<Float32Array> => {
      const T = qLens.reduce((a, c) => a + c, 0);
      const qsl = [0];
      for (const q of qLens) qsl.push(qsl[qsl.length - 1]! + q);
      const maxBlocks = 16;
      const tables = new Int32Array(lens.length * maxBlocks);
      lens.forEach((_, s) => {
        for (let i = 0; i < maxBlocks; i++) tables[s * maxBlocks + i] = (s * 7 + i * 3) % NB;
      });
      const q = upload(b, [T, H, Dh], rand(T * H * Dh, 5 + T));
      const out = b.alloc([T, H, Dh], 'f32');
      const meta = {
        numSeqs: lens.length,
        maxQueryLen: Math.max(...qLens),
        maxSeqLen: Math.max(...lens),
        queryStartLoc: upload(b, [lens.length + 1], Int32Array.from(qsl), 'i32'),
        seqLens: upload(b, [lens.length], Int32Array.from(lens), 'i32'),
        blockTables: upload(b, [lens.length, maxBlocks], tables, 'i32'),
      };
      // Seq 0 always gets the same q rows: overwrite them with a fixed pattern.
      b.upload(q, rand(qLens[0]! * H * Dh, 99));
      b.attention(out, q, cache, meta, 0.125, 0);
      return (await b.read(out)).slice(0, qLens[0]! * H * Dh);
    };
    const alone = await run([100], [3]);
    const batched = await run([100, 40, 200, 7], [3, 40, 1, 7]);
    assert.deepEqual(batched, alone);
    b.dispose();
  });

  it('a native index error rejects read() with native_error and the backend keeps working', async () => {
    const b = createCpuBackend({ numThreads: 1 });
    const table = upload(b, [10, 8], rand(80, 6));
    const ids = upload(b, [2], Int32Array.of(3, 10), 'i32');
    const out = b.alloc([2, 8], 'f32');
    b.embedding(out, table, ids);
    await assert.rejects(
      b.read(out),
      (e: unknown) => e instanceof TokenmillError && e.code === 'native_error' && /token id 10/.test(e.message),
    );
    b.upload(ids, Int32Array.of(3, 9));
    b.embedding(out, table, ids);
    const got = await b.read(out);
    assert.deepEqual(got.subarray(0, 8), rand(80, 6).subarray(24, 32));
    b.dispose();
  });

  it('accounts memory and frees it; views are not counted', () => {
    const b = createCpuBackend({ numThreads: 1 });
    const t = b.alloc([4, 4], 'bf16');
    const v = b.view(t, [8], 8);
    assert.equal(v.numel, 8);
    assert.deepEqual(b.memoryStats(), { allocatedBytes: 32, numTensors: 1 });
    b.free(t);
    assert.deepEqual(b.memoryStats(), { allocatedBytes: 0, numTensors: 0 });
    b.dispose();
  });

  // The KV pool allocates with resident: its RSS must show at once, not creep up as blocks are first
  // written (what an operator reads as a leak). A plain alloc of the same size stays untouched.
  it('alloc with resident commits the pages, zero-filled; a plain alloc does not', async () => {
    if (process.platform !== 'linux') return;
    const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
    const b = createCpuBackend({ numThreads: 1 });
    const n = 16 << 20; // 64 MiB of f32
    const r0 = rss();
    const plain = b.alloc([n], 'f32');
    const r1 = rss();
    const resident = b.alloc([n], 'f32', { resident: true });
    const r2 = rss();
    assert.ok(r1 - r0 < 16 << 20, `plain alloc: RSS +${r1 - r0} bytes`);
    assert.ok(r2 - r1 > 60 << 20, `resident alloc: RSS +${r2 - r1} bytes`);
    const tail = await b.read(b.view(resident, [4096], n - 4096));
    assert.ok(tail.every((x) => x === 0));
    b.free(plain);
    b.free(resident);
    b.dispose();
  });

  it('forced ISAs agree with the default within f32 rounding', async () => {
    const results: Float32Array[] = [];
    for (const cpuIsa of ['generic', 'avx2', undefined] as const) {
      const b = createCpuBackend({ numThreads: 1, cpuIsa });
      const out = b.alloc([3, 50], 'f32');
      b.matmul(out, upload(b, [3, 77], rand(231, 7)), upload(b, [50, 77], rand(3850, 8), 'bf16'), null);
      results.push(await b.read(out));
      b.dispose();
    }
    for (const r of results) for (let i = 0; i < r.length; i++) assert.ok(Math.abs(r[i]! - results[0]![i]!) < 1e-4);
  });
});

describe('cpu backend worker-thread flushes', { skip }, () => {
  it('queued work runs off the JS thread, in order with uploads, and errors surface once', async () => {
    const b = createCpuBackend({ numThreads: 2, asyncMinWork: 0 });
    const x = upload(b, [4, 64], rand(256, 10));
    const w = upload(b, [96, 64], rand(96 * 64, 11));
    const out = b.alloc([4, 96], 'f32');
    b.matmul(out, x, w, null);
    const first = b.read(out); // starts a worker-thread flush
    b.upload(x, rand(256, 12)); // must wait for it: the matmul saw the old x
    const a = await first;
    b.matmul(out, x, w, null);
    const second = await b.read(out);
    const sync = createCpuBackend({ numThreads: 1, asyncMinWork: Infinity });
    const out2 = sync.alloc([4, 96], 'f32');
    sync.matmul(out2, upload(sync, [4, 64], rand(256, 10)), upload(sync, [96, 64], rand(96 * 64, 11)), null);
    assert.deepEqual(a, await sync.read(out2));
    assert.notDeepEqual(a, second);
    sync.dispose();
    const ids = upload(b, [1], Int32Array.of(99), 'i32');
    const emb = b.alloc([1, 64], 'f32');
    b.embedding(emb, x, ids);
    await assert.rejects(b.synchronize(), (e: unknown) => e instanceof TokenmillError && e.code === 'native_error');
    await b.synchronize(); // reported once
    b.dispose();
  });
});

describe('cpu backend reads that overlap host work', { skip }, () => {
  it('overlapHostWork runs even a small queue off the JS thread (grammar masks at one stream), same result', async () => {
    const b = createCpuBackend({ numThreads: 1, asyncMinWork: Infinity });
    const inflight = (): unknown => (b as unknown as { inflight: unknown }).inflight;
    const x = upload(b, [1, 64], rand(64, 30));
    const w = upload(b, [96, 64], rand(96 * 64, 31));
    const out = b.alloc([1, 96], 'f32');
    b.matmul(out, x, w, null);
    const plain = b.read(out);
    assert.equal(inflight(), null, 'a small queue runs synchronously inside read()');
    const want = await plain;
    b.matmul(out, x, w, null);
    const overlapped = b.read(out, { overlapHostWork: true });
    assert.notEqual(inflight(), null, 'with overlapHostWork the queue is on a worker when read() returns');
    assert.deepEqual(await overlapped, want);
    b.dispose();
  });
});

describe('cpu fused ropeKvWriteQkv', { skip }, () => {
  it('is bit-identical to rope + kvWrite on the split heads', async () => {
    const b = createCpuBackend({ numThreads: 2 });
    const [T, H, Hkv, Dh, NB, BS] = [5, 4, 2, 16, 4, 4];
    const G = H + 2 * Hkv;
    const qkvHost = rand(T * G * Dh, 21);
    const split = (from: number, heads: number): Float32Array => {
      const out = new Float32Array(T * heads * Dh);
      for (let t = 0; t < T; t++) out.set(qkvHost.subarray((t * G + from) * Dh, (t * G + from + heads) * Dh), t * heads * Dh);
      return out;
    };
    const pos = upload(b, [T], Int32Array.of(0, 7, 100, 2047, 3), 'i32');
    const slots = upload(b, [T], Int32Array.of(3, -1, 0, 15, 9), 'i32');
    const inv = upload(
      b,
      [Dh / 2],
      Float32Array.from({ length: Dh / 2 }, (_, i) => 10000 ** (-(2 * i) / Dh)),
    );
    const cacheOf = () => ({
      k: upload(b, [NB, BS, Hkv, Dh], new Float32Array(NB * BS * Hkv * Dh)),
      v: upload(b, [NB, BS, Hkv, Dh], new Float32Array(NB * BS * Hkv * Dh)),
    });
    const fusedCache = cacheOf();
    const qOut = b.alloc([T, H, Dh], 'f32');
    b.ropeKvWriteQkv!(qOut, upload(b, [T, G * Dh], qkvHost), fusedCache, pos, inv, slots);
    const q = upload(b, [T, H, Dh], split(0, H));
    const k = upload(b, [T, Hkv, Dh], split(H, Hkv));
    const v = upload(b, [T, Hkv, Dh], split(H + Hkv, Hkv));
    const cache = cacheOf();
    b.rope(q, k, pos, inv);
    b.kvWrite(cache, k, v, slots);
    assert.deepEqual(await b.read(qOut), await b.read(q));
    assert.deepEqual(await b.read(fusedCache.k), await b.read(cache.k));
    assert.deepEqual(await b.read(fusedCache.v), await b.read(cache.v));
    b.dispose();
  });
});

describe('cpu graphs', { skip }, () => {
  it('replays recorded ops on fresh inputs like eager calls; memory ops inside a capture fail', async () => {
    const plain = createCpuBackend({ numThreads: 1, graphs: false });
    assert.equal(plain.graphs, undefined); // opted out
    plain.dispose();
    const b = createCpuBackend({ numThreads: 2 }); // on by default
    assert.equal(b.graphs?.decodeByDefault, true);
    assert.equal(b.graphs?.warmupBeforeCapture, false);
    const graphs = b.graphs!;
    const x = upload(b, [3, 40], rand(120, 31));
    const w = upload(b, [50, 40], rand(2000, 32), 'bf16');
    const out = b.alloc([3, 50], 'f32');
    const act = b.alloc([3, 25], 'f32'); // out read as [gate | up], as the MLP reads gateUp
    graphs.capture('step', () => {
      b.matmul(out, x, w, null);
      b.siluMul(act, out);
    });
    assert.equal(graphs.size, 1);
    assert.ok(graphs.has('step'));
    for (const seed of [33, 34]) {
      b.upload(x, rand(120, seed));
      graphs.replay('step');
      const got = await b.read(act);
      b.matmul(out, x, w, null);
      b.siluMul(act, out);
      assert.deepEqual(got, await b.read(act));
    }
    assert.throws(
      () =>
        graphs.capture('bad', () => {
          b.alloc([1], 'f32');
        }),
      (e: unknown) => e instanceof TokenmillError,
    );
    assert.equal(graphs.has('bad'), false);
    assert.throws(
      () => graphs.replay('missing'),
      (e: unknown) => e instanceof TokenmillError,
    );
    graphs.clear();
    assert.equal(graphs.size, 0);
    b.dispose();
  });
});
