// Backend over the native CPU kernels. (Stub: replaced by the CPU addon work.)
import type { Backend } from '../backend.js';
import { TokenmillError } from '../../util/errors.js';

export interface CpuBackendOptions {
  /** Worker threads for kernels; default: the number of physical cores. */
  readonly numThreads?: number;
}

export function cpuAddonAvailable(): { available: boolean; reason: string } {
  return { available: false, reason: 'the CPU addon is not built yet' };
}

export function createCpuBackend(_opts: CpuBackendOptions = {}): Backend {
  throw new TokenmillError('backend_unavailable', 'CPU addon not built');
}
