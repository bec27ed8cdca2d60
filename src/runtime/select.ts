// The one door to concrete backends: picks reference | cpu | cuda for `--device auto|cpu|cuda`
// and says why. Nothing else imports runtime/cpu or runtime/cuda.
import type { Backend } from './backend.js';
import { createReferenceBackend } from './reference/reference-backend.js';
import { CPU_ISAS, cpuAddonAvailable, createCpuBackend, type CpuBackendOptions } from './cpu/cpu-backend.js';
import { trimNativeMemory } from './cpu/cpu-addon.js';
import { createCudaBackend, probeCuda, type CudaBackendOptions, type CudaProbe } from './cuda/cuda-backend.js';
import { configureCuda } from './cuda/cuda-config.js';
import { TokenmillError } from '../util/errors.js';

export type DeviceChoice = 'auto' | 'cpu' | 'cuda' | 'reference';

export interface SelectOptions extends CpuBackendOptions, CudaBackendOptions {
  readonly device?: DeviceChoice;
}

export interface Selection {
  readonly backend: Backend;
  /** Human-readable reason for the choice (printed by the CLI, shown by doctor). */
  readonly reason: string;
}

export function selectBackend(opts: SelectOptions = {}): Selection {
  const device = opts.device ?? 'auto';
  if (device === 'reference')
    return { backend: createReferenceBackend(), reason: 'reference backend requested (slow; the executable spec)' };
  if (device === 'cuda' || device === 'auto') {
    const probe = probeCuda();
    if (probe.available) {
      return { backend: createCudaBackend(opts), reason: `cuda: ${probe.devices[0]?.name ?? 'GPU'} found` };
    }
    if (device === 'cuda') throw new TokenmillError('backend_unavailable', `--device cuda: ${probe.reason}`);
    const cpu = cpuAddonAvailable();
    if (!cpu.available) throw new TokenmillError('backend_unavailable', `no usable backend: cuda: ${probe.reason}; cpu: ${cpu.reason}`);
    return { backend: createCpuBackend(opts), reason: `cpu (cuda unavailable: ${probe.reason})` };
  }
  const cpu = cpuAddonAvailable();
  if (!cpu.available) throw new TokenmillError('backend_unavailable', `--device cpu: ${cpu.reason}`);
  return { backend: createCpuBackend(opts), reason: 'cpu requested' };
}

export { CPU_ISAS, configureCuda, cpuAddonAvailable, probeCuda, createReferenceBackend, createCpuBackend, createCudaBackend };
export { trimNativeMemory };
export type { CudaProbe };
export type { CpuIsa } from './cpu/cpu-backend.js';
