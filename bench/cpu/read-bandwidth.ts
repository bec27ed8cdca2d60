// The machine's read bandwidth as the CPU addon measures it (probeReadBandwidth: a pre-touched buffer
// summed with 16-byte loads, split over N threads): the bound a DRAM-streaming decode step approaches.
// Bench only (it blocks for ~0.1 s per GiB per rep).   node --import tsx bench/cpu/read-bandwidth.ts
import { loadCpuAddon } from '../../src/runtime/native.js';

export interface ReadBandwidth {
  readonly threads: number;
  readonly sizeBytes: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function measureReadBandwidth(threads: number, o: { sizeBytes?: number; reps?: number } = {}): ReadBandwidth {
  const { addon, reason } = loadCpuAddon();
  if (addon?.probeReadBandwidth === undefined) throw new Error(`read-bandwidth probe needs the CPU addon (rebuild it): ${reason}`);
  const sizeBytes = o.sizeBytes ?? 2 ** 30;
  const runs = [...addon.probeReadBandwidth(threads, sizeBytes, o.reps ?? 5)].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 10) / 10;
  return { threads, sizeBytes, median: r(runs[Math.floor(runs.length / 2)]!), min: r(runs[0]!), max: r(runs[runs.length - 1]!) };
}

/** part as a whole-number percentage of whole (null when whole is unknown). */
export function pctOf(part: number, whole: number | undefined): number | null {
  return whole === undefined || whole <= 0 ? null : Math.round((100 * part) / whole);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const t of [1, 2]) console.log(JSON.stringify(measureReadBandwidth(t)));
}
