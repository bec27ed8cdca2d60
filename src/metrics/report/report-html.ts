// The bench HTML report (`tokenmill bench report FILES... --out report.html`): one self-contained
// page (inline CSS and SVG, no scripts, no external URLs) with throughput, latency percentiles and
// cost per 1M tokens vs concurrency, latency vs throughput with the Pareto frontier (what a capacity
// planner reads: the most tok/s that still meets a latency target), peers side by side, and a table.
import type { BenchRecord } from '../bench/bench-record.js';
import { paretoFrontier } from './pareto.js';
import { barChart, escapeXml, lineChart, type Series } from './svg-plot.js';

export interface ReportOptions {
  readonly title?: string;
  /** Result files the records came from (listed on the page). */
  readonly sources?: readonly string[];
  readonly generatedAt?: string;
}

/** A curve: same engine, device, model and shape (and rate); points differ by concurrency. */
export function seriesKey(r: BenchRecord): string {
  const rate = r.requestRate !== null ? ` @${r.requestRate}rps` : '';
  return `${r.engine} · ${r.model} ${r.inLen}/${r.outLen}${rate}`;
}

function groupSeries(rs: readonly BenchRecord[], y: (r: BenchRecord) => number | null, suffix = '', dashed = false): Series[] {
  const by = new Map<string, { x: number; y: number }[]>();
  for (const r of rs) {
    const v = y(r);
    if (v === null || !Number.isFinite(v)) continue;
    const k = seriesKey(r) + suffix;
    (by.get(k) ?? by.set(k, []).get(k)!).push({ x: r.concurrency, y: v });
  }
  return [...by].map(([name, points]) => ({ name, points, dashed, colorKey: name.slice(0, name.length - suffix.length) }));
}

/**
 * Latency against throughput: one curve per series walked by concurrency (points labelled c=N), and
 * the Pareto frontier over every record as a dashed black line.
 */
function tradeoffChart(rs: readonly BenchRecord[], latency: (r: BenchRecord) => number | null, title: string): string {
  // Walking a curve by concurrency needs one device per curve: add it to the key when records differ.
  const manyDevices = new Set(rs.map((r) => r.device)).size > 1;
  const keyOf = (r: BenchRecord): string => (manyDevices ? `${seriesKey(r)} · ${r.device}` : seriesKey(r));
  const by = new Map<string, BenchRecord[]>();
  for (const r of rs) (by.get(keyOf(r)) ?? by.set(keyOf(r), []).get(keyOf(r))!).push(r);
  const series: Series[] = [...by].map(([name, list]) => ({
    name,
    points: [...list]
      .sort((a, b) => a.concurrency - b.concurrency)
      .flatMap((r) => {
        const y = latency(r);
        return r.tokPerS !== null && y !== null ? [{ x: r.tokPerS, y, label: `c=${r.concurrency}` }] : [];
      }),
  }));
  const candidates = rs.flatMap((r) => {
    const y = latency(r);
    return r.tokPerS !== null && y !== null ? [{ throughput: r.tokPerS, latency: y }] : [];
  });
  const front = paretoFrontier(candidates);
  if (front.length > 1)
    series.push({
      name: 'Pareto frontier (every record)',
      points: front.map((p) => ({ x: p.throughput, y: p.latency })),
      dashed: true,
      color: '#111',
    });
  return lineChart(series, { title, xLabel: 'output tok/s', yLabel: 'ms', logX: true, logY: true, keepOrder: true, decadeTicksX: true });
}

const num = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : (+v.toPrecision(digits)).toLocaleString('en-US');

function usd(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  return v >= 0.01 ? `$${v.toFixed(4)}` : `$${v.toPrecision(3)}`;
}

function table(rs: readonly BenchRecord[]): string {
  const head = [
    'engine',
    'device',
    'model',
    'dtype',
    'in/out',
    'conc.',
    'rate',
    'tok/s (median [min..max])',
    'TTFT p50/p99 ms',
    'ITL p50/p99 ms',
    'GB/s (% peak)',
    '$/1M tok',
    'J/tok',
    'errors',
    'ok/req',
  ];
  const rows = rs.map((r) => {
    const sp = r.tokPerSSpread;
    const tps = sp !== null && sp.runs.length > 1 ? `${num(r.tokPerS)} [${num(sp.min)}..${num(sp.max)}]` : num(r.tokPerS);
    const bw = r.gbPerS === null ? '–' : `${num(r.gbPerS)}${r.pctPeak === null ? '' : ` (${num(r.pctPeak, 2)}%)`}`;
    const errs =
      r.errors.total === 0
        ? '0'
        : Object.entries(r.errors.byClass)
            .map(([k, v]) => `${k}:${v}`)
            .join(' ');
    const cells = [
      r.engine + (r.engineVersion ? ` ${r.engineVersion}` : ''),
      r.device,
      r.model,
      r.dtype,
      `${r.inLen}/${r.outLen}`,
      String(r.concurrency),
      r.requestRate === null ? '–' : String(r.requestRate),
      tps,
      `${num(r.ttftMs.p50)} / ${num(r.ttftMs.p99)}`,
      `${num(r.itlMs.p50)} / ${num(r.itlMs.p99)}`,
      bw,
      usd(r.usdPer1MTok),
      num(r.joulesPerTok),
      errs,
      `${r.numOk}/${r.numRequests}`,
    ];
    return `<tr>${cells.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`;
  });
  return `<table><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** Peers: one group per (device, model, shape, concurrency), one bar per engine, tok/s. */
function peersChart(rs: readonly BenchRecord[]): string {
  const engines = [...new Set(rs.map((r) => r.engine))];
  const groups = new Map<string, Record<string, number | null>>();
  for (const r of rs) {
    const g = `${r.model}\n${r.inLen}/${r.outLen} c=${r.concurrency}`;
    (groups.get(g) ?? groups.set(g, {}).get(g)!)[r.engine] = r.tokPerS;
  }
  return barChart(
    [...groups].map(([label, values]) => ({ label, values })),
    engines,
    { title: 'Peers side by side: output tok/s', xLabel: 'model in/out, concurrency', yLabel: 'tok/s', logY: true },
  );
}

export function buildReportHtml(records: readonly BenchRecord[], o: ReportOptions = {}): string {
  const title = o.title ?? 'tokenmill benchmark report';
  const prices = [...new Set(records.map((r) => r.usdPerHour))];
  const devices = [...new Set(records.map((r) => r.device))];
  const costLog = records.some((r) => r.usdPer1MTok !== null);
  const charts = [
    lineChart(
      groupSeries(records, (r) => r.tokPerS),
      { title: 'Throughput vs concurrency', xLabel: 'concurrency', yLabel: 'output tok/s', logX: true },
    ),
    lineChart([...groupSeries(records, (r) => r.ttftMs.p50, ' p50'), ...groupSeries(records, (r) => r.ttftMs.p99, ' p99', true)], {
      title: 'Time to first token (p50 solid, p99 dashed)',
      xLabel: 'concurrency',
      yLabel: 'ms',
      logX: true,
      logY: true,
    }),
    lineChart([...groupSeries(records, (r) => r.itlMs.p50, ' p50'), ...groupSeries(records, (r) => r.itlMs.p99, ' p99', true)], {
      title: 'Inter-token latency (p50 solid, p99 dashed)',
      xLabel: 'concurrency',
      yLabel: 'ms',
      logX: true,
      logY: true,
    }),
    lineChart(
      groupSeries(records, (r) => r.usdPer1MTok),
      { title: 'Cost per 1M output tokens vs concurrency', xLabel: 'concurrency', yLabel: 'USD per 1M tokens', logX: true, logY: costLog },
    ),
    tradeoffChart(records, (r) => r.itlMs.p50, 'Latency vs throughput: inter-token p50 (Pareto frontier dashed)'),
    tradeoffChart(records, (r) => r.ttftMs.p99, 'Latency vs throughput: time to first token p99 (Pareto frontier dashed)'),
    peersChart(records),
  ];
  const css =
    'body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px}' +
    'td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}' +
    'th{background:#f3f3f3}td:nth-child(-n+4){text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}' +
    'figure{margin:0}code{background:#f6f6f6;padding:0 3px}';
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeXml(title)}</title>`,
    `<style>${css}</style></head><body>`,
    `<h1>${escapeXml(title)}</h1>`,
    `<p>${records.length} records; device${devices.length === 1 ? '' : 's'}: ${escapeXml(devices.join('; '))}. ` +
      `Price${prices.length === 1 ? '' : 's'} used for cost: ${prices.map((p) => `$${p}/h`).join(', ')} (cost = price / 3600 × ` +
      'wall seconds / generated tokens).' +
      `${o.generatedAt ? ` Generated ${escapeXml(o.generatedAt)}.` : ''}</p>`,
    `<div class="charts">${charts.map((c) => `<figure>${c}</figure>`).join('')}</div>`,
    '<h2>Records</h2>',
    table(records),
    (o.sources?.length ?? 0) > 0
      ? `<h2>Sources</h2><ul>${o.sources!.map((s) => `<li><code>${escapeXml(s)}</code></li>`).join('')}</ul>`
      : '',
    '</body></html>',
    '',
  ].join('\n');
}
