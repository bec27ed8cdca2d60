// The machine price that every cost figure uses (metrics/cost.ts is the formula): the user's
// --usd-per-hour when given ('flag'), otherwise a documented default for the device ('assumed'): the
// GPU's typical on-demand price from gpu-specs.ts, matched by the device name CUDA reports, or a
// per-core price for the host CPU. Never a quote: start-up, /version and /metrics say which it is.
import { ACCELERATORS } from './gpu-specs.js';

export type PriceSource = 'flag' | 'assumed';

export interface MachinePrice {
  readonly usdPerHour: number;
  readonly source: PriceSource;
  /** Where the number comes from, in words (printed at start-up, in /version). */
  readonly basis: string;
}

/** USD per logical CPU core per hour: AWS c7i on-demand (us-east-1, 2025) is about $0.0446 per vCPU-hour. */
export const CPU_USD_PER_CORE_HOUR = 0.045;
/** A GPU the table does not know: a mid-range on-demand price (between L4/A10G and A100). */
export const UNKNOWN_GPU_USD_PER_HOUR = 1.5;

/** gpu-specs.ts key for a CUDA device name ('NVIDIA H200', 'NVIDIA A100-SXM4-40GB', 'NVIDIA L4', ...), or null. */
export function acceleratorKeyForGpuName(name: string, totalMemoryBytes?: number): string | null {
  const n = name.toLowerCase();
  if (n.includes('h200')) return 'h200';
  if (n.includes('h100')) return 'h100';
  if (n.includes('a100')) {
    const is40 = n.includes('40gb') || (totalMemoryBytes !== undefined && totalMemoryBytes < 60e9);
    return is40 ? 'a100-40g' : 'a100';
  }
  if (n.includes('l40s')) return 'l40s';
  if (/\bl4\b/.test(n)) return 'l4';
  if (/\ba10g?\b/.test(n)) return 'a10g';
  if (n.includes('4090')) return 'rtx4090';
  return null;
}

/** What runs the model, as far as its price is concerned. */
export type PricedDevice =
  | { readonly kind: 'gpu'; readonly name: string; readonly totalMemoryBytes?: number }
  | { readonly kind: 'cpu'; readonly numCores: number };

/** The documented default price of a device (source 'assumed'). */
export function assumedMachinePrice(d: PricedDevice): MachinePrice {
  if (d.kind === 'cpu') {
    const usd = Math.round(d.numCores * CPU_USD_PER_CORE_HOUR * 1e4) / 1e4;
    return {
      usdPerHour: usd,
      source: 'assumed',
      basis: `${d.numCores} CPU cores x $${CPU_USD_PER_CORE_HOUR}/core-hour (AWS c7i on-demand per vCPU)`,
    };
  }
  const key = acceleratorKeyForGpuName(d.name, d.totalMemoryBytes);
  if (key === null)
    return {
      usdPerHour: UNKNOWN_GPU_USD_PER_HOUR,
      source: 'assumed',
      basis: `${d.name}: not in the GPU price table, a generic $${UNKNOWN_GPU_USD_PER_HOUR}/h`,
    };
  const spec = ACCELERATORS[key]!;
  return {
    usdPerHour: spec.usdPerHour,
    source: 'assumed',
    basis: `${d.name}: typical on-demand price of an ${spec.name} (src/metrics/gpu-specs.ts)`,
  };
}

/** --usd-per-hour when given, else the device's assumed price. */
export function machinePrice(flag: number | undefined, device: PricedDevice): MachinePrice {
  if (flag !== undefined) return { usdPerHour: flag, source: 'flag', basis: '--usd-per-hour' };
  return assumedMachinePrice(device);
}
