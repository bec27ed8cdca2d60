// Backend over the native CUDA kernels. (Stub: replaced by the CUDA backend work.)
import type { Backend } from '../backend.js';
import { TokenmillError } from '../../util/errors.js';

export interface CudaBackendOptions {
  readonly deviceIndex?: number;
  /** Activation / KV dtype on the device. */
  readonly dtype?: 'bf16' | 'f16' | 'f32';
}

export interface CudaProbe {
  readonly available: boolean;
  /** Why not, when unavailable (no addon built, no driver, no device...). */
  readonly reason: string;
  readonly devices: readonly { name: string; computeCapability: string; totalMemoryBytes: number; freeMemoryBytes: number; bf16: boolean }[];
  readonly driverVersion: string | null;
  readonly runtimeVersion: string | null;
  readonly cublasLt: boolean;
}

export function probeCuda(): CudaProbe {
  return { available: false, reason: 'the CUDA addon is not built', devices: [], driverVersion: null, runtimeVersion: null, cublasLt: false };
}

export function createCudaBackend(_opts: CudaBackendOptions = {}): Backend {
  throw new TokenmillError('backend_unavailable', 'CUDA addon not built');
}
