// The backends the conformance suite checks against the reference, found through runtime/select.ts.
// An unavailable backend is reported as a skipped test with its reason, never as passed.
// TOKENMILL_CONFORMANCE_SELF=1 adds the reference itself and a simulated bf16 backend as targets
// (to check the harness and its tolerances without a GPU). The CUDA target takes its compute dtype
// from TOKENMILL_CUDA_DTYPE as the CLI does (scripts/gpu/run-suite.sh runs the suite once per dtype).
import type { Backend } from '../../src/runtime/backend.js';
import type { CpuIsa } from '../../src/runtime/select.js';
import { createBf16SimBackend } from './bf16-sim.js';
import { readCpuinfo } from '../../src/metrics/fingerprint.js';
import { backendOptionsFromEnv } from '../../src/cli/env.js';
import type { CudaBackendOptions } from '../../src/runtime/cuda/cuda-backend.js';
import { cpuAddonAvailable, createCpuBackend, createCudaBackend, createReferenceBackend, probeCuda } from '../../src/runtime/select.js';

export interface ConformanceTarget {
  readonly name: string;
  /** Why the backend cannot run here (shown as the skip reason), or null when it can. */
  readonly skipReason: string | null;
  create(): Backend;
}

/** The cpuinfo flags each forced ISA needs (the *vnni tables differ from their base only in matmulGgml and matmulQ8). */
const ISA_FLAGS: Readonly<Record<CpuIsa, readonly string[]>> = {
  avx512amx: ['amx_tile', 'amx_int8', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx2', 'fma', 'f16c'],
  avx512vnni: ['avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx2', 'fma', 'f16c'],
  avx512: ['avx512f', 'avx512bw', 'avx512vl', 'avx2', 'fma', 'f16c'],
  avx2vnni: ['avx_vnni', 'avx2', 'fma', 'f16c'],
  avx2: ['avx2', 'fma', 'f16c'],
  generic: [],
};

/** What a suite asks of the CUDA target: cudaGgml creates it with the ggml kernels on (named cuda-ggml). */
export interface TargetOptions {
  readonly cudaGgml?: boolean;
}

/** Every suite runs on the best ISA, forced avx2 and generic; `extraIsas` adds forced ones (matmulGgml: all five). */
export function conformanceTargets(extraIsas: readonly CpuIsa[] = [], opts: TargetOptions = {}): ConformanceTarget[] {
  const targets: ConformanceTarget[] = [];
  const cpu = cpuAddonAvailable();
  targets.push({ name: 'cpu', skipReason: cpu.available ? null : `cpu: ${cpu.reason}`, create: () => createCpuBackend() });
  // The CPU kernels exist per ISA (avx512, avx2+fma+f16c, portable, and VNNI variants); the default
  // picks the best this CPU runs, so the others are checked here by forcing them.
  const flags = readCpuinfo()?.flags;
  for (const cpuIsa of [...extraIsas, 'avx2', 'generic'] as const) {
    const runs = ISA_FLAGS[cpuIsa].every((f) => flags?.[f] === true);
    const skipReason = !cpu.available ? `cpu: ${cpu.reason}` : runs ? null : `cpu-${cpuIsa}: this CPU lacks ${cpuIsa}`;
    targets.push({ name: `cpu-${cpuIsa}`, skipReason, create: () => createCpuBackend({ cpuIsa }) });
  }
  const cuda = probeCuda();
  const { dtype } = backendOptionsFromEnv();
  const cudaOpts: CudaBackendOptions = { ...(dtype ? { dtype } : {}), ...(opts.cudaGgml ? { ggmlKernels: true } : {}) };
  targets.push({
    name: `cuda${opts.cudaGgml ? '-ggml' : ''}${dtype ? `-${dtype}` : ''}`,
    skipReason: cuda.available ? null : `cuda: ${cuda.reason}`,
    create: () => createCudaBackend(cudaOpts),
  });
  if (process.env.TOKENMILL_CONFORMANCE_SELF === '1') {
    targets.push({ name: 'reference-self', skipReason: null, create: () => createReferenceBackend() });
    targets.push({ name: 'reference-bf16-sim', skipReason: null, create: () => createBf16SimBackend() });
  }
  return targets;
}
