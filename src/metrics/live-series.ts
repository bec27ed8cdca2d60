// The dashboard's time series: one row per sampling tick (default 1 s) over the last 15 minutes,
// kept in memory and served as JSON columns (GET /metrics/series), so the page never parses
// Prometheus text. Rates and percentiles are computed here from what ServerMetrics counted
// between ticks; nothing here runs inside an engine step.

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { CostSummary } from './cost.js';
import type { NvmlSample } from '../runtime/native.js';

export interface LiveSnapshot {
  /** Cumulative counts since start. */
  readonly generatedTokens: number;
  readonly prefixHitTokens: number;
  readonly prefixQueryTokens: number;
  readonly engine: { numRunning: number; numWaiting: number; kvCacheUsage: number } | null;
  /** Latency observations (seconds) since the previous tick. */
  readonly ttftSeconds: readonly number[];
  readonly itlSeconds: readonly number[];
  /** Cost over the ledger's sliding window, both bases. */
  readonly cost: CostSummary;
  readonly gpu: NvmlSample | null;
}

export type SeriesRow = Record<string, number | null>;

/** Percentile by nearest rank over an ascending array (null when empty). */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);
const round = (x: number | null, digits: number): number | null => (x === null ? null : Number(x.toFixed(digits)));

/** CPU use between calls: this process (share of all cores) and the whole machine. */
class CpuMeter {
  private readonly numCores = Math.max(1, cpus().length);
  private lastAtMs = performance.now();
  private lastProcess = process.cpuUsage();
  private lastMachine = machineTimes();

  read(): { processPct: number | null; machinePct: number | null } {
    const at = performance.now();
    const proc = process.cpuUsage();
    const mach = machineTimes();
    const wallUs = (at - this.lastAtMs) * 1000;
    const usedUs = proc.user - this.lastProcess.user + proc.system - this.lastProcess.system;
    const busy = mach.busy - this.lastMachine.busy;
    const total = mach.total - this.lastMachine.total;
    this.lastAtMs = at;
    this.lastProcess = proc;
    this.lastMachine = mach;
    return {
      processPct: wallUs > 0 ? Math.min(100, (100 * usedUs) / (wallUs * this.numCores)) : null,
      machinePct: total > 0 ? (100 * busy) / total : null,
    };
  }
}

/** Busy and total CPU time of the machine: /proc/stat's first line on Linux (cheap), os.cpus() elsewhere. */
function machineTimes(): { busy: number; total: number } {
  if (process.platform === 'linux') {
    try {
      // cpu  user nice system idle iowait irq softirq steal ...
      const f = readFileSync('/proc/stat', 'latin1');
      const v = f.slice(0, f.indexOf('\n')).trim().split(/\s+/).slice(1, 9).map(Number);
      const idle = (v[3] ?? 0) + (v[4] ?? 0);
      const total = v.reduce((a, b) => a + b, 0);
      return { busy: total - idle, total };
    } catch {
      // fall through to os.cpus()
    }
  }
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

export class LiveSeries {
  readonly capacity: number;
  private readonly rows: SeriesRow[] = [];
  private readonly columns = new Set<string>(['t']);
  private last: { atMs: number; snap: LiveSnapshot } | null = null;
  /** Latency observations of the last few ticks (percentiles over ~latencyTicks seconds). */
  private readonly recentTtft: (readonly number[])[] = [];
  private readonly recentItl: (readonly number[])[] = [];
  private readonly cpu = new CpuMeter();

  constructor(opts: { capacity?: number; latencyTicks?: number } = {}) {
    this.capacity = opts.capacity ?? 900;
    this.latencyTicks = opts.latencyTicks ?? 5;
  }

  private readonly latencyTicks: number;

  /** Append one row computed from snap against the previous one. */
  record(atMs: number, snap: LiveSnapshot): SeriesRow {
    const prev = this.last;
    const dtS = prev === null ? 0 : (atMs - prev.atMs) / 1000;
    const push = (list: (readonly number[])[], obs: readonly number[]): number[] => {
      list.push(obs);
      if (list.length > this.latencyTicks) list.shift();
      return list.flat().sort((a, b) => a - b);
    };
    const ttft = push(this.recentTtft, snap.ttftSeconds);
    const itl = push(this.recentItl, snap.itlSeconds);
    const dq = prev === null ? 0 : snap.prefixQueryTokens - prev.snap.prefixQueryTokens;
    const dh = prev === null ? 0 : snap.prefixHitTokens - prev.snap.prefixHitTokens;
    const cpu = this.cpu.read();
    const ms = (s: number | null): number | null => round(s === null ? null : s * 1000, 3);
    const row: SeriesRow = {
      t: atMs,
      out_tok_s: dtS > 0 ? round((snap.generatedTokens - prev!.snap.generatedTokens) / dtS, 3) : null,
      ttft_p50_ms: ms(percentile(ttft, 50)),
      ttft_p99_ms: ms(percentile(ttft, 99)),
      itl_p50_ms: ms(percentile(itl, 50)),
      itl_p99_ms: ms(percentile(itl, 99)),
      running: snap.engine?.numRunning ?? null,
      waiting: snap.engine?.numWaiting ?? null,
      kv_pct: snap.engine ? round(100 * snap.engine.kvCacheUsage, 2) : null,
      prefix_hit_pct: dq > 0 ? round((100 * dh) / dq, 2) : null,
      usd_per_1k_busy: finite(snap.cost.busyUsdPer1k),
      usd_per_1k_all_in: finite(snap.cost.allInUsdPer1k),
      cpu_process_pct: round(cpu.processPct, 2),
      cpu_machine_pct: round(cpu.machinePct, 2),
    };
    for (const d of snap.gpu?.devices ?? []) {
      const g = `gpu${d.index}_`;
      row[g + 'util_pct'] = d.utilizationPct;
      row[g + 'mem_used_gib'] = d.memoryUsedBytes === null ? null : round(d.memoryUsedBytes / 2 ** 30, 3);
      row[g + 'mem_total_gib'] = d.memoryTotalBytes === null ? null : round(d.memoryTotalBytes / 2 ** 30, 3);
      row[g + 'power_w'] = d.powerWatts;
      row[g + 'temp_c'] = d.temperatureC;
      row[g + 'sm_clock_mhz'] = d.smClockMHz;
    }
    for (const k of Object.keys(row)) this.columns.add(k);
    this.rows.push(row);
    if (this.rows.length > this.capacity) this.rows.shift();
    this.last = { atMs, snap };
    return row;
  }

  get numRows(): number {
    return this.rows.length;
  }

  /** Rows with t > sinceMs as columns (every column ever seen; null where a row lacks it). */
  since(sinceMs = -Infinity): Record<string, (number | null)[]> {
    let i = this.rows.length;
    while (i > 0 && this.rows[i - 1]!.t! > sinceMs) i--;
    const rows = this.rows.slice(i);
    const out: Record<string, (number | null)[]> = {};
    for (const c of this.columns) out[c] = rows.map((r) => r[c] ?? null);
    return out;
  }
}
