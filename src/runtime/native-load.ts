// Loads the native addons typed in native.ts, once each: a missing, broken or stale binary is a
// reason string, never a throw. configureNativeAddons() is set by the composition root only.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddonLoad, CpuAddon, CudaAddon } from './native.js';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

/** Addon binaries elsewhere than build/Release above this file; absent or '' = that default search. */
export interface NativeAddonPaths {
  readonly cpuAddonPath?: string;
  readonly cudaAddonPath?: string;
}

let addonPaths: NativeAddonPaths = {};
let cpuLoad: AddonLoad<CpuAddon> | null = null;
let cudaChecked: AddonLoad<CudaAddon> | null = null;

/**
 * Process-wide addon locations, set by the composition root (src/cli/program.ts, the GPU suite's
 * bundles) before the first load; a later call forgets what was loaded, so the next load uses them.
 */
export function configureNativeAddons(paths: NativeAddonPaths): void {
  addonPaths = { ...paths };
  cpuLoad = null;
  cudaChecked = null;
}

/** `override` when given, else build/Release/<file> in the repo root above this file (src/runtime or dist/src/runtime). */
function findBinary(file: string, override: string | undefined): string | null {
  if (override) return existsSync(override) ? resolve(override) : null;
  let dir = here;
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'build', 'Release', file);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return null;
}

/** require() a binary once; a missing or unloadable file is a reason, never a throw. */
function loadBinary(file: string, override: string | undefined, missing: string): AddonLoad<unknown> {
  const path = findBinary(file, override);
  if (path === null) return { addon: null, reason: missing };
  try {
    return { addon: require(path) as unknown, reason: `loaded ${path}` };
  } catch (e) {
    return { addon: null, reason: `cannot load ${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** The CPU addon, loaded once (configureNativeAddons' cpuAddonPath overrides its path). */
export function loadCpuAddon(): AddonLoad<CpuAddon> {
  cpuLoad ??= loadBinary(
    'tokenmill_cpu.node',
    addonPaths.cpuAddonPath,
    'build/Release/tokenmill_cpu.node not found (run `npm run install` to build it)',
  ) as AddonLoad<CpuAddon>;
  return cpuLoad;
}

/** The CUDA addon when built with ABI version 1, loaded once (configureNativeAddons' cudaAddonPath overrides its path). */
export function loadCudaAddon(): AddonLoad<CudaAddon> {
  if (cudaChecked !== null) return cudaChecked;
  const bin = loadBinary(
    'tokenmill_cuda.node',
    addonPaths.cudaAddonPath,
    'the CUDA addon is not built (build/Release/tokenmill_cuda.node missing; it builds where nvcc exists)',
  );
  if (bin.addon === null) {
    cudaChecked = { addon: null, reason: bin.reason };
    return cudaChecked;
  }
  const addon = bin.addon as CudaAddon;
  cudaChecked =
    addon.abiVersion === 1
      ? { addon, reason: bin.reason }
      : { addon: null, reason: `${bin.reason}: ABI version ${addon.abiVersion}, expected 1 (rebuild it)` };
  return cudaChecked;
}
