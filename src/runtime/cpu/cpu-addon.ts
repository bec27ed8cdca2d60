// The CPU addon as this backend can use it: loaded, and built from the same op ABI as
// src/runtime/cpu/cpu-op-abi.ts; plus the host facts the backend sizes itself by (physical cores,
// ISAs) and the mapping of addon errors to TokenmillError.
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { loadCpuAddon, type CpuAddon } from '../native.js';
import { TokenmillError } from '../../util/errors.js';
import { OP_PAYLOAD_INTS } from './cpu-op-abi.js';

export type CpuIsa = 'avx512amx' | 'avx512vnni' | 'avx512' | 'avx2vnni' | 'avx2' | 'generic';
/** Every CpuIsa, best first (the CLI checks TOKENMILL_CPU_ISA against it). */
export const CPU_ISAS: readonly CpuIsa[] = ['avx512amx', 'avx512vnni', 'avx512', 'avx2vnni', 'avx2', 'generic'];

/** The addon, or why it cannot be used: missing, unloadable, or built from another op ABI (cpu-op-abi.ts). */
export function usableCpuAddon(): { addon: CpuAddon | null; reason: string } {
  const load = loadCpuAddon();
  if (load.addon === null) return load;
  const built = load.addon.opPayloadInts as readonly number[] | undefined;
  // A binary without the ABI export predates it and speaks an older op ABI (other op codes).
  if (built === undefined || built.length !== OP_PAYLOAD_INTS.length || built.some((n, i) => n !== OP_PAYLOAD_INTS[i])) {
    return {
      addon: null,
      reason: `${load.reason}, but it was built from another op ABI than src/runtime/cpu/cpu-op-abi.ts (rebuild it: npm run install)`,
    };
  }
  return load;
}

export function cpuAddonAvailable(): { available: boolean; reason: string } {
  const load = usableCpuAddon();
  return { available: load.addon !== null, reason: load.reason };
}

/** Physical cores (distinct thread-sibling sets), falling back to logical CPUs. */
export function physicalCoreCount(): number {
  const logical = cpus().length || 1;
  const seen = new Set<string>();
  for (let i = 0; i < logical; i++) {
    try {
      seen.add(readFileSync(`/sys/devices/system/cpu/cpu${i}/topology/thread_siblings_list`, 'utf8').trim());
    } catch {
      return logical;
    }
  }
  return seen.size > 0 ? seen.size : logical;
}

/** Turns an addon Error (code = native status name) into a TokenmillError. */
export function nativeError(e: unknown): TokenmillError {
  const code = (e as { code?: unknown } | null)?.code;
  const msg = e instanceof Error ? e.message : String(e);
  return new TokenmillError(code === 'out_of_memory' ? 'out_of_memory' : 'native_error', `cpu backend: ${msg}`, {
    details: { nativeCode: typeof code === 'string' ? code : 'unknown' },
    cause: e,
  });
}

/** Hands native allocator memory back to the OS where the CPU addon can (glibc); false otherwise. */
export function trimNativeMemory(): boolean {
  const addon = loadCpuAddon().addon;
  return addon?.trimMemory?.() ?? false;
}
