// The CPU worker pool and engine take their tuning as createEngine options from the CLI (src/cli/env.ts
// reads TOKENMILL_SPIN_US / TOKENMILL_POOL_SOLO / TOKENMILL_CPU_PROFILE / TOKENMILL_CPU_HUGEPAGES); native
// code reads no environment. Workers that sleep at once (spinUs 0) must still be woken for every job:
// many small parallel matmuls give the same bits as one thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuPoolOptionsFromEnv } from '../../src/cli/env.js';
import { isTokenmillError } from '../../src/util/errors.js';
import { CpuBackend, cpuAddonAvailable, createCpuBackend } from '../../src/runtime/cpu/cpu-backend.js';
import type { CpuPoolOptions } from '../../src/runtime/native.js';

test('TOKENMILL_SPIN_US / TOKENMILL_POOL_SOLO become pool options in the CLI; bad values are typed errors', () => {
  assert.deepEqual(cpuPoolOptionsFromEnv({}), {});
  assert.deepEqual(cpuPoolOptionsFromEnv({ TOKENMILL_SPIN_US: '0' }), { cpuPool: { spinUs: 0 } });
  const both = cpuPoolOptionsFromEnv({ TOKENMILL_SPIN_US: '200', TOKENMILL_POOL_SOLO: '0' });
  assert.deepEqual(both, { cpuPool: { spinUs: 200, poolSolo: false } });
  assert.deepEqual(cpuPoolOptionsFromEnv({ TOKENMILL_POOL_SOLO: '1' }), { cpuPool: { poolSolo: true } });
  for (const bad of ['-1', '1.5', 'fast', '1e9']) {
    const typed = (e: unknown): boolean => isTokenmillError(e) && e.code === 'invalid_argument';
    assert.throws(() => cpuPoolOptionsFromEnv({ TOKENMILL_SPIN_US: bad }), typed, bad);
  }
});

const skip = cpuAddonAvailable().available ? false : 'cpu addon not built';

/** 200 decode-shaped matmuls (T = 1, N = K = 288, the stories15M width) on a pool with these options. */
async function run(numThreads: number, cpuPool: CpuPoolOptions): Promise<Float32Array> {
  const b = createCpuBackend({ numThreads, cpuPool });
  try {
    const [N, K] = [288 * 4, 288];
    const w = b.alloc([N, K], 'f32');
    const x = b.alloc([1, K], 'f32');
    const out = b.alloc([1, N], 'f32');
    b.upload(
      w,
      Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.37)),
    );
    const acc = new Float32Array(N);
    for (let r = 0; r < 200; r++) {
      b.upload(
        x,
        Float32Array.from({ length: K }, (_, i) => Math.cos((i + r) * 0.11)),
      );
      b.matmul(out, x, w, null);
      const got = await b.read(out);
      for (let i = 0; i < N; i++) acc[i] = acc[i]! + got[i]!;
    }
    return acc;
  } finally {
    b.dispose();
  }
}

test('pool options reach the native pool; sleeping workers wake for every job (2 threads = 1 thread, bit for bit)', { skip }, async () => {
  const one = await run(1, {});
  for (const pool of [{ spinUs: 0 }, { spinUs: 0, poolSolo: false }, { spinUs: 1000, poolSolo: true }]) {
    assert.deepEqual(await run(2, pool), one, JSON.stringify(pool));
  }
});

test('engine switches reach the native engine: per-op times only with profile; no huge pages still allocates', { skip }, async () => {
  for (const cpuEngine of [{}, { profile: true }, { profile: true, hugepages: false }]) {
    const b = createCpuBackend({ numThreads: 1, cpuEngine });
    try {
      const big = b.alloc([3 << 20], 'f32'); // 12 MiB: over the huge-page threshold
      const x = b.alloc([1, 8], 'f32');
      const out = b.alloc([1, 8], 'f32');
      b.upload(big, new Float32Array(3 << 20).fill(1));
      b.upload(
        x,
        Float32Array.from({ length: 8 }, (_, i) => i - 4),
      );
      b.matmul(out, x, b.view(big, [8, 8], 0), null);
      assert.deepEqual([...(await b.read(out))], new Array(8).fill(-4), JSON.stringify(cpuEngine));
      assert.ok(b instanceof CpuBackend);
      const info = b.info();
      if ('profile' in cpuEngine) assert.ok((info.opCalls ?? []).reduce((a, c) => a + c, 0) >= 1, 'the matmul counted');
      else assert.equal(info.opTimeNs, undefined);
    } finally {
      b.dispose();
    }
  }
});
