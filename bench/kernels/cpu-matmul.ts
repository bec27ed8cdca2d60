// CPU matmul kernel bench: decode GEMV (T = 1) in GB/s of weights streamed and prefill GEMM
// (T = 128) in GFLOP/s, f32/f16/bf16 weights, 1 and 2 threads. Median of --reps timed runs after
// warm-up; working sets larger than L2 rotate over several weight copies to defeat caches.
//   node --import tsx bench/kernels/cpu-matmul.ts [--reps 20] [--threads 1,2]
import { selectBackend } from '../../src/runtime/select.js';
import type { Backend, Tensor } from '../../src/runtime/backend.js';
import type { FloatDType } from '../../src/runtime/dtype.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const reps = Number(arg('reps', '20'));
const threadList = arg('threads', '1,2').split(',').map(Number);
const SHAPES: readonly { K: number; N: number; what: string }[] = [
  { K: 288, N: 768, what: '15M w1' },
  { K: 768, N: 768, what: '110M wq' },
  { K: 768, N: 2048, what: '110M w1' },
  { K: 2048, N: 768, what: '110M w2' },
  { K: 768, N: 32000, what: '110M lm_head' },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeIt(b: Backend, run: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) run();
  await b.synchronize();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    run();
    await b.synchronize();
    times.push(performance.now() - t0);
  }
  return median(times);
}

const rows: Record<string, unknown>[] = [];
for (const threads of threadList) {
  const { backend: b } = selectBackend({ device: 'cpu', numThreads: threads });
  for (const dtype of ['f32', 'bf16', 'f16'] as FloatDType[]) {
    for (const s of SHAPES) {
      const esz = dtype === 'f32' ? 4 : 2;
      const wBytes = s.K * s.N * esz;
      const copies = Math.max(1, Math.ceil((256 << 20) / wBytes / 4)); // >= 64 MiB rotating set
      const ws: Tensor[] = [];
      for (let c = 0; c < Math.min(copies, 16); c++) {
        const w = b.alloc([s.N, s.K], dtype);
        b.upload(w, new Float32Array(s.N * s.K).fill(0.01 * (c + 1)));
        ws.push(w);
      }
      for (const T of [1, 128]) {
        const x = b.alloc([T, s.K], 'f32');
        b.upload(x, new Float32Array(T * s.K).fill(0.5));
        const out = b.alloc([T, s.N], 'f32');
        let i = 0;
        const ms = await timeIt(b, () => b.matmul(out, x, ws[i++ % ws.length]!, null));
        const gbPerS = wBytes / (ms / 1000) / 1e9;
        const gflops = (2 * T * s.K * s.N) / (ms / 1000) / 1e9;
        rows.push({ threads, dtype, T, K: s.K, N: s.N, what: s.what, ms: +ms.toFixed(4), gbPerS: +gbPerS.toFixed(2), gflops: +gflops.toFixed(1) });
        console.log(`threads=${threads} ${dtype} T=${T} K=${s.K} N=${s.N} (${s.what}): ${ms.toFixed(3)} ms  ${gbPerS.toFixed(1)} GB/s  ${gflops.toFixed(1)} GFLOP/s`);
        b.free(x);
        b.free(out);
      }
      for (const w of ws) b.free(w);
    }
  }
  b.dispose();
}
if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
