// Whether the CUDA backend can run here, and on what: the addon, driver, runtime, devices and
// cuBLASLt as the addon's probe reports them, with a sentence saying why not when it cannot.
import { loadCudaAddon } from '../native.js';
import { cudaProbeReason, cudaVersionString } from './cuda-probe-reason.js';
import { configuredCublasLtPath } from './cuda-config.js';

export interface CudaProbe {
  readonly available: boolean;
  /** Why not, when unavailable (no addon built, no driver, no device...). */
  readonly reason: string;
  readonly devices: readonly {
    name: string;
    computeCapability: string;
    totalMemoryBytes: number;
    freeMemoryBytes: number;
    bf16: boolean;
  }[];
  readonly driverVersion: string | null;
  readonly runtimeVersion: string | null;
  readonly cublasLt: boolean;
}

export function probeCuda(): CudaProbe {
  const { addon, reason } = loadCudaAddon();
  if (addon === null) return { available: false, reason, devices: [], driverVersion: null, runtimeVersion: null, cublasLt: false };
  try {
    const p = addon.probe(configuredCublasLtPath());
    return {
      available: p.ok,
      reason: p.ok
        ? `${p.devices.length} device(s)${p.cublasLt ? '' : `; cuBLASLt unavailable (${p.cublasLtReason}), own GEMM used`}`
        : cudaProbeReason(p.reason, p.driverVersion, p.runtimeVersion),
      devices: p.devices.map((d) => ({
        name: d.name,
        computeCapability: d.computeCapability,
        totalMemoryBytes: d.totalMemoryBytes,
        freeMemoryBytes: d.freeMemoryBytes,
        bf16: d.bf16,
      })),
      driverVersion: cudaVersionString(p.driverVersion),
      runtimeVersion: cudaVersionString(p.runtimeVersion),
      cublasLt: p.cublasLt,
    };
  } catch (e) {
    return {
      available: false,
      reason: `CUDA probe failed: ${e instanceof Error ? e.message : String(e)}`,
      devices: [],
      driverVersion: null,
      runtimeVersion: null,
      cublasLt: false,
    };
  }
}
