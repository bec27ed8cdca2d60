// Shared helpers for *.gpu.test.ts: the CUDA skip reason, where the suite writes JSON results
// (TOKENMILL_GPU_OUT, default .gpu-out), and relative-error metrics. Like the CLI, it maps
// TOKENMILL_CUBLASLT to the CUDA configuration before the first probe.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cudaConfigFromEnv } from '../../src/cli/env.js';
import { configureCuda, probeCuda } from '../../src/runtime/select.js';

configureCuda(cudaConfigFromEnv());
const probe = probeCuda();
/** node:test skip value: a reason when no usable CUDA device, else false. Never "passed" without a GPU. */
export const cudaSkip: string | false = probe.available ? false : `cuda unavailable: ${probe.reason}`;
export const cudaProbe = probe;

export function writeResult(name: string, data: unknown): void {
  const dir = process.env.TOKENMILL_GPU_OUT ?? '.gpu-out';
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(data, null, 2));
}

/** ||a - b|| / ||b|| over the whole array (or a row of length n at offset). */
export function relErr(a: Float32Array, b: Float32Array, offset = 0, n = b.length): number {
  let num = 0;
  let den = 0;
  for (let i = offset; i < offset + n; i++) {
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export function argmaxOf(x: Float32Array, offset = 0, n = x.length): number {
  let best = offset;
  for (let i = offset + 1; i < offset + n; i++) if (x[i]! > x[best]!) best = i;
  return best - offset;
}

/** Device free bytes as the driver reports them (initialises the CUDA context on first use). */
export function deviceFreeBytes(): number {
  return probeCuda().devices[0]?.freeMemoryBytes ?? 0;
}
