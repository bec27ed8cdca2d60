// What a bench record needs to know about the machine: the peak memory bandwidth to compare
// against (the GPU table in gpu-specs.ts by device name, or a measured host copy bandwidth on CPU)
// and board power sampled from nvidia-smi while a run is in flight (null where there is none).
import { spawn, type ChildProcess } from 'node:child_process';
import { ACCELERATORS, type AcceleratorSpec } from '../gpu-specs.js';

/** The gpu-specs entry for a CUDA device name ('NVIDIA H100 80GB HBM3' -> h100), or null. */
export function acceleratorForDeviceName(name: string): AcceleratorSpec | null {
  const n = name.toLowerCase();
  const has = (s: string): boolean => n.includes(s);
  if (has('h200')) return ACCELERATORS.h200!;
  if (has('h100')) return ACCELERATORS.h100!;
  if (has('a100')) return has('40gb') ? ACCELERATORS['a100-40g']! : ACCELERATORS.a100!;
  if (has('l40s')) return ACCELERATORS.l40s!;
  if (/\bl4\b/.test(n)) return ACCELERATORS.l4!;
  if (has('a10g') || /\ba10\b/.test(n)) return ACCELERATORS.a10g!;
  if (has('4090')) return ACCELERATORS.rtx4090!;
  return null;
}

/**
 * Host memory bandwidth, GB/s, counting bytes read + written by a single-thread TypedArray copy
 * (best of `reps`). What one core can stream: the fair roof for 1-2 thread CPU decode.
 */
export function measureHostCopyGbPerS(sizeBytes = 256 * 1024 * 1024, reps = 5): number {
  const n = Math.floor(sizeBytes / 8);
  const src = new Float64Array(n).fill(1);
  const dst = new Float64Array(n);
  dst.set(src); // fault the pages in
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * n * 8) / (best / 1000) / 1e9;
}

/** Samples nvidia-smi power.draw every intervalMs until stop(); stop() gives the mean watts or null. */
export class PowerSampler {
  private readonly samples: number[] = [];
  private child: ChildProcess | null = null;
  private failed = false;

  constructor(
    private readonly gpuIndex = 0,
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    try {
      const c = spawn(
        'nvidia-smi',
        ['--query-gpu=power.draw', '--format=csv,noheader,nounits', `-lms`, String(this.intervalMs), '-i', String(this.gpuIndex)],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      );
      c.on('error', () => {
        this.failed = true;
      });
      let buf = '';
      c.stdout?.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) {
          const w = Number(l.trim());
          if (Number.isFinite(w) && w > 0) this.samples.push(w);
        }
      });
      this.child = c;
    } catch {
      this.failed = true;
    }
    return this;
  }

  stop(): number | null {
    this.child?.kill();
    this.child = null;
    if (this.failed || this.samples.length === 0) return null;
    return this.samples.reduce((a, b) => a + b, 0) / this.samples.length;
  }
}
