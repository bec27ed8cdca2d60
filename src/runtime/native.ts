// The one file that loads .node binaries and types the whole native surface. The CPU addon
// (build/Release/tokenmill_cpu.node, built by scripts/build-native.mjs) is loaded lazily; a missing
// or broken binary is reported as a reason string, never thrown at import time.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opaque native CpuEngine handle (an N-API external). */
export interface CpuEngineHandle {
  readonly __cpuEngine: unique symbol;
}

export interface CpuEngineInfo {
  /** Kernel ISA chosen at run time: 'avx512' | 'avx2' | 'generic'. */
  readonly isa: string;
  readonly numThreads: number;
  readonly allocatedBytes: number;
  /** With TOKENMILL_CPU_PROFILE=1: wall ns and calls per op code (index = OP code). */
  readonly opTimeNs?: readonly number[];
  readonly opCalls?: readonly number[];
}

/** Status names the CPU addon puts in Error.code. */
export type CpuNativeCode = 'invalid_argument' | 'out_of_range' | 'out_of_memory' | 'internal';

/** tokenmill_cpu.node: every function throws an Error with code CpuNativeCode on failure. */
export interface CpuAddon {
  /** forceIsa: '' for the best supported, or 'avx512' | 'avx2' | 'generic'. */
  createEngine(numThreads: number, forceIsa: string): CpuEngineHandle;
  /** Frees every buffer and joins the workers; the handle is dead afterwards. */
  destroyEngine(engine: CpuEngineHandle): void;
  engineInfo(engine: CpuEngineHandle): CpuEngineInfo;
  /** A 64-byte aligned buffer: [id, ArrayBuffer over it]. */
  alloc(engine: CpuEngineHandle, sizeBytes: number): [number, ArrayBuffer];
  /** Frees buffer id and detaches its ArrayBuffer. */
  free(engine: CpuEngineHandle, id: number, buffer: ArrayBuffer): void;
  /** Executes numInts ints of recorded commands now (format: runtime/cpu/cpu-tensor.ts). */
  flush(engine: CpuEngineHandle, commands: Int32Array, numInts: number): void;
  /**
   * Copies the commands and runs them on a libuv worker thread (with the engine's pool); the
   * Promise always resolves: the outcome is reported by the next waitIdle(). Every other call
   * blocks until it is done.
   */
  flushAsync(engine: CpuEngineHandle, commands: Int32Array, numInts: number): Promise<void>;
  /** Blocks until no async flush runs; throws (once) if the last one failed. */
  waitIdle(engine: CpuEngineHandle): void;
  /** Writes src into buffer id at byteOffset as f16 (dtypeCode 1) or bf16 (2). */
  convertFromF32(engine: CpuEngineHandle, src: Float32Array, id: number, byteOffset: number, dtypeCode: number): void;
  /**
   * Reads every GPU through NVML (libraryName opened with dlopen, e.g. 'libnvidia-ml.so.1') on a
   * libuv worker thread. Never rejects: a missing library or failed init gives available = false.
   * Absent from CPU addons built before NVML sampling existed.
   */
  nvmlSample?(libraryName: string): Promise<NvmlSample>;
}

/** One NVML reading; a field is null when the device does not report it. */
export interface NvmlDeviceSample {
  readonly index: number;
  readonly name: string;
  readonly utilizationPct: number | null;
  readonly memoryUsedBytes: number | null;
  readonly memoryTotalBytes: number | null;
  readonly powerWatts: number | null;
  readonly temperatureC: number | null;
  readonly smClockMHz: number | null;
}

export interface NvmlSample {
  readonly available: boolean;
  /** Why NVML is unavailable ('' when available). */
  readonly reason: string;
  readonly devices: readonly NvmlDeviceSample[];
}

export interface AddonLoad<T> {
  readonly addon: T | null;
  /** Why it is null, or where it was loaded from. */
  readonly reason: string;
}

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

/** Looks for build/Release/<file> in the repo root above this file (src/runtime or dist/src/runtime). */
function findBinary(file: string, envVar: string): string | null {
  const override = process.env[envVar];
  if (override) return existsSync(override) ? resolve(override) : null;
  let dir = here;
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'build', 'Release', file);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return null;
}

let cpuLoad: AddonLoad<CpuAddon> | null = null;

/** The CPU addon, loaded once (TOKENMILL_CPU_ADDON overrides its path). */
export function loadCpuAddon(): AddonLoad<CpuAddon> {
  if (cpuLoad !== null) return cpuLoad;
  const path = findBinary('tokenmill_cpu.node', 'TOKENMILL_CPU_ADDON');
  if (path === null) {
    cpuLoad = { addon: null, reason: 'build/Release/tokenmill_cpu.node not found (run `npm run install` to build it)' };
    return cpuLoad;
  }
  try {
    cpuLoad = { addon: require(path) as CpuAddon, reason: `loaded ${path}` };
  } catch (e) {
    cpuLoad = { addon: null, reason: `cannot load ${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
  return cpuLoad;
}

let cudaLoad: AddonLoad<unknown> | null = null;

/**
 * The CUDA addon binary (built only where nvcc exists), loaded once; TOKENMILL_CUDA_ADDON overrides
 * its path. Untyped here: runtime/cuda/cuda-native.ts types and version-checks it.
 */
export function loadCudaAddonBinary(): AddonLoad<unknown> {
  if (cudaLoad !== null) return cudaLoad;
  const path = findBinary('tokenmill_cuda.node', 'TOKENMILL_CUDA_ADDON');
  if (path === null) {
    cudaLoad = { addon: null, reason: 'the CUDA addon is not built (build/Release/tokenmill_cuda.node missing; it builds where nvcc exists)' };
    return cudaLoad;
  }
  try {
    cudaLoad = { addon: require(path) as unknown, reason: `loaded ${path}` };
  } catch (e) {
    cudaLoad = { addon: null, reason: `cannot load ${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
  return cudaLoad;
}
