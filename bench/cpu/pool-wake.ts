// CPU pool hand-off microbench: the per-op cost of a microsecond matmul (T = 1, K = N = 288: a
// stories15M wo, 83K multiply-adds, just above the engine's parallel threshold) run back to back,
// on 1 thread, on 2 threads whose workers spin between ops (spinUs 50), and on 2 threads whose
// workers sleep after every op (spinUs 0: each op pays a condition-variable wake-up). Median of
// --reps batches of --ops ops each. wake-up cost ~ perOp(2t, spin 0) - perOp(2t, spin 50); fork-join
// overhead ~ perOp(2t, spin 50) - perOp(1t) / 2. Noisy on a shared machine: compare in one run.
//   node --import tsx bench/cpu/pool-wake.ts [--ops 2000] [--reps 7]
import { parseArgs } from 'node:util';
import { selectBackend } from '../../src/runtime/select.js';
import type { CpuPoolOptions } from '../../src/runtime/native.js';

const { values } = parseArgs({ options: { ops: { type: 'string', default: '2000' }, reps: { type: 'string', default: '7' } } });
const ops = Number(values.ops);
const reps = Number(values.reps);

async function perOpUs(numThreads: number, cpuPool: CpuPoolOptions): Promise<number> {
  const { backend: b } = selectBackend({ device: 'cpu', numThreads, cpuPool });
  const [K, N] = [288, 288];
  const w = b.alloc([N, K], 'f32');
  b.upload(
    w,
    Float32Array.from({ length: N * K }, (_, i) => Math.sin(i)),
  );
  const x = b.alloc([1, K], 'f32');
  b.upload(x, new Float32Array(K).fill(0.5));
  const out = b.alloc([1, N], 'f32');
  const times: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) b.matmul(out, x, w, null);
    await b.synchronize();
    if (r > 0) times.push(((performance.now() - t0) * 1000) / ops);
  }
  b.dispose();
  times.sort((p, q) => p - q);
  return Math.round(times[Math.floor(times.length / 2)]! * 100) / 100;
}

const one = await perOpUs(1, {});
const spin = await perOpUs(2, { spinUs: 50 });
const sleep = await perOpUs(2, { spinUs: 0 });
const perOp = { oneThread: one, twoThreadsSpinning: spin, twoThreadsSleeping: sleep };
console.log(
  JSON.stringify({
    bench: 'cpu-pool-wake',
    ops,
    reps,
    perOpUs: perOp,
    wakeUpUs: Math.round((sleep - spin) * 100) / 100,
    forkJoinOverheadUs: Math.round((spin - one / 2) * 100) / 100,
  }),
);
