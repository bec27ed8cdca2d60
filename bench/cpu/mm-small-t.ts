// Quick matmul probe for batched decode shapes (T = 1..64 rows) of the stories15M model on the CPU
// backend: GFLOP/s median [min-max] of --reps timed calls (weights L3/L2 resident, as in decode).
// --cold rotates over copies of each weight (>= 64 MiB in all) so weights come from L3, as in a model
// step where other layers' weights and the KV cache pass through L2 in between.
// node --import tsx bench/cpu/mm-small-t.ts [--threads 1] [--t 1,8,32] [--reps 30] [--cold]
import { parseArgs } from 'node:util';
import { selectBackend } from '../../src/runtime/select.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    t: { type: 'string', default: '1,8,32' },
    reps: { type: 'string', default: '30' },
    cold: { type: 'boolean', default: false },
  },
});
const { backend: b } = selectBackend({ device: 'cpu', numThreads: Number(values.threads) });
const shapes = [
  { K: 288, N: 864, what: 'qkv' },
  { K: 288, N: 288, what: 'wo' },
  { K: 288, N: 1536, what: 'w13' },
  { K: 768, N: 288, what: 'w2' },
  { K: 288, N: 32000, what: 'lm_head' },
];
const rnd = (n: number): Float32Array => {
  const a = new Float32Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
};
for (const T of values.t!.split(',').map(Number)) {
  const parts: string[] = [];
  let total = 0;
  for (const { K, N, what } of shapes) {
    const x = b.alloc([T, K], 'f32');
    b.upload(x, rnd(T * K));
    const copies = values.cold ? Math.max(1, Math.ceil((64 << 20) / (N * K * 4))) : 1;
    const ws = Array.from({ length: copies }, () => {
      const w = b.alloc([N, K], 'f32');
      b.upload(w, rnd(N * K));
      return w;
    });
    const o = b.alloc([T, N], 'f32');
    const ts: number[] = [];
    for (let r = 0; r < Number(values.reps) + 3; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 4; i++) b.matmul(o, x, ws[(r * 4 + i) % copies]!, null);
      await b.synchronize();
      if (r >= 3) ts.push((performance.now() - t0) / 4);
    }
    ts.sort((a, c) => a - c);
    const med = ts[ts.length >> 1]!;
    total += med * (what === 'lm_head' ? 1 : 6);
    parts.push(`${what} ${med.toFixed(3)}ms ${((2 * T * K * N) / med / 1e6).toFixed(0)}GF/s`);
    b.free(x);
    b.free(o);
    for (const w of ws) b.free(w);
  }
  console.log(`T=${T}: ${parts.join(' | ')} | model step ${total.toFixed(2)} ms`);
}
b.dispose();
