// CPU matmul kernel bench: decode GEMV (T = 1) in GB/s of weights streamed and prefill GEMM
// (T = 128) in GFLOP/s, f32/f16/bf16 weights, 1 and 2 threads. Median, p90 and best of --reps
// timed runs after warm-up (best = what the kernel can do on a shared, noisy machine); weights
// rotate over copies (>= 64 MiB) so decode streams from memory, not L2. Writes
// bench/results/cpu-matmul-<date>.json.   node --import tsx bench/kernels/cpu-matmul.ts [--reps 20] [--threads 1,2]
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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

interface Timing {
  median: number;
  p90: number;
  best: number;
}
function summarize(xs: number[]): Timing {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p90: s[Math.floor(s.length * 0.9)]!, best: s[0]! };
}

async function timeIt(b: Backend, run: () => void): Promise<Timing> {
  for (let i = 0; i < 3; i++) run();
  await b.synchronize();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    run();
    await b.synchronize();
    times.push(performance.now() - t0);
  }
  return summarize(times);
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
        const tm = await timeIt(b, () => b.matmul(out, x, ws[i++ % ws.length]!, null));
        const gb = (ms: number): number => +(wBytes / (ms / 1000) / 1e9).toFixed(2);
        const gf = (ms: number): number => +((2 * T * s.K * s.N) / (ms / 1000) / 1e9).toFixed(1);
        rows.push({
          threads,
          dtype,
          T,
          K: s.K,
          N: s.N,
          what: s.what,
          medianMs: +tm.median.toFixed(4),
          p90Ms: +tm.p90.toFixed(4),
          bestMs: +tm.best.toFixed(4),
          gbPerS: gb(tm.median),
          bestGbPerS: gb(tm.best),
          gflops: gf(tm.median),
          bestGflops: gf(tm.best),
        });
        console.log(
          `threads=${threads} ${dtype} T=${T} K=${s.K} N=${s.N} (${s.what}): median ${tm.median.toFixed(3)} ms (${gb(tm.median)} GB/s, ` +
            `${gf(tm.median)} GFLOP/s); best ${gb(tm.best)} GB/s, ${gf(tm.best)} GFLOP/s`,
        );
        b.free(x);
        b.free(out);
      }
      for (const w of ws) b.free(w);
    }
  }
  b.dispose();
}
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
} catch {
  /* not a checkout */
}
const date = new Date().toISOString();
mkdirSync('bench/results', { recursive: true });
const file = `bench/results/cpu-matmul-${date.slice(0, 16).replace(/[:T]/g, '-')}.json`;
writeFileSync(
  file,
  `${JSON.stringify({ bench: 'cpu-matmul', date, commit, cpuModel: cpus()[0]?.model, loadAvg: loadavg(), reps, rows }, null, 2)}\n`,
);
console.log(`wrote ${file}`);
