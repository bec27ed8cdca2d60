// The comparison table BENCHMARKS.md shows (`bench report --markdown FILE`): per device, model,
// shape and concurrency, tokenmill next to each peer measured in the same run, the ratio
// (tokenmill tok/s / peer tok/s) and USD per 1M output tokens at the price every record echoes.
import type { BenchRecord } from '../bench/bench-record.js';

const fmt = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : String(+v.toPrecision(digits));

function tokPerS(r: BenchRecord): string {
  const s = r.tokPerSSpread;
  return s !== null && s.runs.length > 1 ? `${fmt(r.tokPerS)} [${fmt(s.min)}–${fmt(s.max)}]` : fmt(r.tokPerS);
}

function usd(v: number | null): string {
  return v === null ? '–' : `$${v < 0.01 ? v.toPrecision(2) : v.toFixed(3)}`;
}

/** Markdown tables, one per device; rows keyed by (model, in/out, concurrency). */
export function comparisonMarkdown(records: readonly BenchRecord[]): string {
  const out: string[] = [];
  const devices = [...new Set(records.map((r) => r.deviceKind))];
  for (const dk of devices) {
    const rs = records.filter((r) => r.deviceKind === dk);
    const peers = [...new Set(rs.filter((r) => r.engine !== 'tokenmill').map((r) => r.engine))];
    const ours = rs.filter((r) => r.engine === 'tokenmill');
    const head = [
      'model',
      'in/out',
      'conc.',
      'tokenmill tok/s',
      'TTFT p50 ms',
      'ITL p50 / p99 ms',
      'tokenmill $/1M',
      ...peers.flatMap((p) => [`${p} tok/s`, `${p} $/1M`, `ratio vs ${p}`]),
    ];
    out.push(
      `Device: ${[...new Set(rs.map((r) => r.device))].join('; ')} — price $${[...new Set(rs.map((r) => r.usdPerHour))].join(', $')}/h`,
      '',
    );
    out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const t of ours) {
      const match = (p: string): BenchRecord | undefined =>
        rs.find(
          (r) => r.engine === p && r.model === t.model && r.inLen === t.inLen && r.outLen === t.outLen && r.concurrency === t.concurrency,
        );
      const cells = [
        t.model,
        `${t.inLen}/${t.outLen}`,
        String(t.concurrency),
        tokPerS(t),
        fmt(t.ttftMs.p50),
        `${fmt(t.itlMs.p50)} / ${fmt(t.itlMs.p99)}`,
        usd(t.usdPer1MTok),
      ];
      for (const p of peers) {
        const r = match(p);
        cells.push(
          r === undefined ? '–' : tokPerS(r),
          r === undefined ? '–' : usd(r.usdPer1MTok),
          r === undefined || !(r.tokPerS > 0) ? '–' : `${(t.tokPerS / r.tokPerS).toFixed(2)}×`,
        );
      }
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
