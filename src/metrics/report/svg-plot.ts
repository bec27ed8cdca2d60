// Inline SVG charts drawn by hand for the bench report (no library, no network): a line chart with
// optional log axes and a grouped bar chart. Output is a self-contained <svg> string; every label
// is XML-escaped. Layout constants are in px.

export interface Point {
  readonly x: number;
  readonly y: number;
  /** Drawn next to the dot (e.g. 'c=32'). */
  readonly label?: string;
}

export interface Series {
  readonly name: string;
  readonly points: readonly Point[];
  /** Dashed stroke (e.g. p99 next to a solid p50). */
  readonly dashed?: boolean;
  /** Series with the same key share a colour (p50 and p99 of one engine); default: the name. */
  readonly colorKey?: string;
  /** A fixed colour outside the palette (e.g. a reference line). */
  readonly color?: string;
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly logX?: boolean;
  readonly logY?: boolean;
  readonly width?: number;
  readonly height?: number;
  /** Join points in the given order instead of by x (a curve walked by concurrency). */
  readonly keepOrder?: boolean;
  /** On a log x axis, tick at decades even when there are few distinct x values (default: at the values). */
  readonly decadeTicksX?: boolean;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Short tick text: 1234 -> 1.2k, 0.00012 -> 1.2e-4. */
export function fmtTick(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 0.01) return `${+v.toPrecision(3)}`;
  return v.toExponential(1);
}

interface Axis {
  readonly map: (v: number) => number;
  readonly ticks: number[];
}

function axis(lo: number, hi: number, log: boolean, pxLo: number, pxHi: number, dataTicks?: readonly number[]): Axis {
  if (log) {
    // Ticks at the data values themselves (e.g. concurrency 1, 8, 32) when there are few of them.
    if (dataTicks !== undefined && dataTicks.length >= 2 && dataTicks.length <= 10) {
      const a = Math.log10(lo);
      const b = Math.log10(hi);
      return { map: (v) => pxLo + ((Math.log10(v) - a) / (b - a)) * (pxHi - pxLo), ticks: [...dataTicks] };
    }
    const a = Math.floor(Math.log10(lo));
    const b = Math.max(a + 1, Math.ceil(Math.log10(hi)));
    const ticks: number[] = [];
    for (let e = a; e <= b; e++) ticks.push(10 ** e);
    return { map: (v) => pxLo + ((Math.log10(Math.max(v, 10 ** a)) - a) / (b - a)) * (pxHi - pxLo), ticks };
  }
  const span = hi - lo || Math.abs(hi) || 1;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= 6) ?? step * 10;
  const start = Math.floor(lo / nice) * nice;
  const end = Math.ceil(hi / nice) * nice;
  const ticks: number[] = [];
  for (let t = start; t <= end + nice / 2; t += nice) ticks.push(+t.toPrecision(12));
  return { map: (v) => pxLo + ((v - start) / (end - start || 1)) * (pxHi - pxLo), ticks };
}

const M = { left: 64, right: 24, top: 32, bottom: 46 };
const LEGEND_ROW = 16;

function frame(
  w: number,
  h: number,
  o: ChartOptions,
  xa: Axis | null,
  ya: Axis,
  body: string,
  xTickLabels: { x: number; label: string }[] = [],
  legendItems: LegendItem[] = [],
): string {
  const parts: string[] = [];
  const totalH = h + (legendItems.length > 0 ? 8 + legendItems.length * LEGEND_ROW : 0);
  parts.push(
    `<svg width="${w}" height="${totalH}" viewBox="0 0 ${w} ${totalH}" role="img" aria-label="${escapeXml(o.title)}" ` +
      'font-family="sans-serif" font-size="11">',
  );
  parts.push(`<rect width="${w}" height="${totalH}" fill="#fff"/>`);
  parts.push(`<text x="${w / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  for (const t of ya.ticks) {
    const y = ya.map(t);
    parts.push(`<line x1="${M.left}" x2="${w - M.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${M.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${escapeXml(fmtTick(t))}</text>`);
  }
  if (xa !== null) {
    for (const t of xa.ticks) {
      const x = xa.map(t);
      parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${M.top}" y2="${h - M.bottom}" stroke="#f0f0f0"/>`);
      parts.push(`<text x="${x.toFixed(1)}" y="${h - M.bottom + 15}" text-anchor="middle">${escapeXml(fmtTick(t))}</text>`);
    }
  }
  for (const l of xTickLabels) {
    // Multi-line labels: one <tspan> per line ('\n' separated).
    const lines = l.label
      .split('\n')
      .map((t, i) => `<tspan x="${l.x.toFixed(1)}" dy="${i === 0 ? 0 : 12}">${escapeXml(t)}</tspan>`)
      .join('');
    parts.push(`<text x="${l.x.toFixed(1)}" y="${h - M.bottom + 14}" text-anchor="middle">${lines}</text>`);
  }
  parts.push(`<line x1="${M.left}" x2="${w - M.right}" y1="${h - M.bottom}" y2="${h - M.bottom}" stroke="#333"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${h - M.bottom}" stroke="#333"/>`);
  parts.push(`<text x="${(M.left + w - M.right) / 2}" y="${h - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(14 ${(M.top + h - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );
  parts.push(body);
  parts.push(legend(h + 8, legendItems));
  parts.push('</svg>');
  return parts.join('');
}

interface LegendItem {
  readonly name: string;
  readonly color: string;
  readonly dashed?: boolean;
}

/** One row per item under the plot, full names. */
function legend(top: number, items: readonly LegendItem[]): string {
  return items
    .map((it, i) => {
      const y = top + 8 + i * LEGEND_ROW;
      const x = M.left;
      return (
        `<line x1="${x}" x2="${x + 18}" y1="${y}" y2="${y}" stroke="${it.color}" stroke-width="3"` +
        `${it.dashed ? ' stroke-dasharray="5 3"' : ''}/>` +
        `<text x="${x + 24}" y="${y + 4}">${escapeXml(it.name)}</text>`
      );
    })
    .join('');
}

/** Colour per colorKey (or name), in first-seen order. */
function colorsOf(series: readonly Series[]): string[] {
  const keys: string[] = [];
  return series.map((s) => {
    if (s.color !== undefined) return s.color;
    const k = s.colorKey ?? s.name;
    let i = keys.indexOf(k);
    if (i < 0) i = keys.push(k) - 1;
    return PALETTE[i % PALETTE.length]!;
  });
}

/** A line chart; points with non-finite or (on log axes) non-positive values are dropped. */
export function lineChart(series: readonly Series[], o: ChartOptions): string {
  const w = o.width ?? 640;
  const h = o.height ?? 320;
  const okv = (v: number, log?: boolean): boolean => Number.isFinite(v) && (!log || v > 0);
  const byX = (a: Point, b: Point): number => (o.keepOrder ? 0 : a.x - b.x);
  const clean = series.map((s) => ({ ...s, points: s.points.filter((p) => okv(p.x, o.logX) && okv(p.y, o.logY)).sort(byX) }));
  const all = clean.flatMap((s) => s.points);
  if (all.length === 0)
    return frame(
      w,
      h,
      o,
      null,
      axis(0, 1, false, h - M.bottom, M.top),
      `<text x="${w / 2}" y="${h / 2}" text-anchor="middle">no data</text>`,
    );
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const xa = axis(
    Math.min(...xs),
    Math.max(...xs),
    o.logX === true,
    M.left,
    w - M.right,
    o.decadeTicksX ? undefined : [...new Set(xs)].sort((a, b) => a - b),
  );
  const ya = axis(o.logY ? Math.min(...ys) : Math.min(0, ...ys), Math.max(...ys), o.logY === true, h - M.bottom, M.top);
  const colors = colorsOf(clean);
  const body = clean
    .map((s, i) => {
      const c = colors[i]!;
      const pts = s.points.map((p) => `${xa.map(p.x).toFixed(1)},${ya.map(p.y).toFixed(1)}`);
      const dots = s.points
        .map((p) => {
          const cx = xa.map(p.x).toFixed(1);
          const cy = ya.map(p.y).toFixed(1);
          const label =
            p.label === undefined
              ? ''
              : `<text x="${cx}" y="${(Number(cy) - 6).toFixed(1)}" text-anchor="middle" font-size="9" fill="${c}">` +
                `${escapeXml(p.label)}</text>`;
          return (
            `<circle cx="${cx}" cy="${cy}" r="3" fill="${c}"><title>` +
            `${escapeXml(`${s.name}: x=${fmtTick(p.x)} y=${fmtTick(p.y)}${p.label ? ` (${p.label})` : ''}`)}</title></circle>` +
            `${label}`
          );
        })
        .join('');
      return (
        `<polyline class="series" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''} ` +
        `points="${pts.join(' ')}"/>${dots}`
      );
    })
    .join('');
  return frame(
    w,
    h,
    o,
    xa,
    ya,
    body,
    [],
    clean.map((s, i) => ({ name: s.name, color: colors[i]!, dashed: s.dashed === true })),
  );
}

export interface BarGroup {
  readonly label: string;
  /** One bar per series name (missing series leave a gap). */
  readonly values: Readonly<Record<string, number | null>>;
}

/** Grouped bars: one group per label, one colour per series name. */
export function barChart(groups: readonly BarGroup[], seriesNames: readonly string[], o: ChartOptions): string {
  const longest = Math.max(0, ...groups.flatMap((g) => g.label.split('\n').map((t) => t.length)));
  const minGroupW = Math.max(seriesNames.length * 18 + 24, longest * 6.2 + 12);
  const w = o.width ?? Math.max(640, M.left + M.right + groups.length * minGroupW);
  const h = o.height ?? 320;
  const vals = groups
    .flatMap((g) => seriesNames.map((s) => g.values[s] ?? null))
    .filter((v): v is number => v !== null && Number.isFinite(v) && (!o.logY || v > 0));
  const ya = axis(o.logY ? Math.min(...vals, 1) : 0, vals.length === 0 ? 1 : Math.max(...vals), o.logY === true, h - M.bottom, M.top);
  const plotW = w - M.left - M.right;
  const groupW = plotW / Math.max(1, groups.length);
  const barW = Math.max(4, Math.min(28, (groupW - 12) / Math.max(1, seriesNames.length)));
  const labels: { x: number; label: string }[] = [];
  const bars: string[] = [];
  groups.forEach((g, gi) => {
    const gx = M.left + gi * groupW + (groupW - barW * seriesNames.length) / 2;
    labels.push({ x: M.left + gi * groupW + groupW / 2, label: g.label });
    seriesNames.forEach((s, si) => {
      const v = g.values[s];
      if (v === null || v === undefined || !Number.isFinite(v) || (o.logY && v <= 0)) return;
      const y = ya.map(v);
      const base = h - M.bottom;
      bars.push(
        `<rect class="bar" x="${(gx + si * barW).toFixed(1)}" y="${Math.min(y, base).toFixed(1)}" width="` +
          `${(barW - 2).toFixed(1)}" height="${Math.abs(base - y).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>` +
          `${escapeXml(`${g.label} ${s}: ${fmtTick(v)}`)}</title></rect>`,
      );
    });
  });
  return frame(
    w,
    h,
    o,
    null,
    ya,
    bars.join(''),
    labels,
    seriesNames.map((s, i) => ({ name: s, color: PALETTE[i % PALETTE.length]! })),
  );
}
