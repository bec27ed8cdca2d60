// The backends the conformance suite checks against the reference, found through runtime/select.ts.
// An unavailable backend is reported as a skipped test with its reason, never as passed.
// TOKENMILL_CONFORMANCE_SELF=1 adds the reference itself and a simulated bf16 backend as targets
// (to check the harness and its tolerances without a GPU).
import type { Backend } from '../../src/runtime/backend.js';
import { createBf16SimBackend } from './bf16-sim.js';
import { readCpuinfo } from '../../src/metrics/fingerprint.js';
import { cpuAddonAvailable, createCpuBackend, createCudaBackend, createReferenceBackend, probeCuda } from '../../src/runtime/select.js';

export interface ConformanceTarget {
  readonly name: string;
  /** Why the backend cannot run here (shown as the skip reason), or null when it can. */
  readonly skipReason: string | null;
  create(): Backend;
}

export function conformanceTargets(): ConformanceTarget[] {
  const targets: ConformanceTarget[] = [];
  const cpu = cpuAddonAvailable();
  targets.push({ name: 'cpu', skipReason: cpu.available ? null : `cpu: ${cpu.reason}`, create: () => createCpuBackend() });
  // The CPU kernels exist three times (avx512, avx2+fma+f16c, portable); the default picks the best
  // this CPU runs, so the others are checked here by forcing them.
  for (const cpuIsa of ['avx2', 'generic'] as const) {
    const flags = readCpuinfo()?.flags;
    const runs = cpuIsa === 'generic' || (flags !== undefined && ['avx2', 'fma', 'f16c'].every((f) => flags[f] === true));
    const skipReason = !cpu.available ? `cpu: ${cpu.reason}` : runs ? null : `cpu-${cpuIsa}: this CPU lacks ${cpuIsa}`;
    targets.push({ name: `cpu-${cpuIsa}`, skipReason, create: () => createCpuBackend({ cpuIsa }) });
  }
  const cuda = probeCuda();
  targets.push({ name: 'cuda', skipReason: cuda.available ? null : `cuda: ${cuda.reason}`, create: () => createCudaBackend() });
  if (process.env.TOKENMILL_CONFORMANCE_SELF === '1') {
    targets.push({ name: 'reference-self', skipReason: null, create: () => createReferenceBackend() });
    targets.push({ name: 'reference-bf16-sim', skipReason: null, create: () => createBf16SimBackend() });
  }
  return targets;
}
