// The dashboard's charts: one uPlot per figure over the series columns of /metrics/series (time in
// ms in column `t`). Charts are created once and only fed new data (setData), so a 1 s refresh stays
// cheap; GPU charts appear once the server reports a GPU.
/* global uPlot */

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

const fixed = (d) => (v) => (v == null ? '–' : v.toFixed(d));
const isDecade = (v) => v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
const decadesOnly = (_u, splits) => splits.map((v) => (isDecade(v) ? v : null));
const usd = (v) => (v == null ? '–' : v === 0 ? '0' : v < 0.001 ? v.toExponential(1) : v.toPrecision(3));

/** The figures: [{ id, title, unit, series: [{ col, label }] }]; GPU ones for each reported GPU. */
export function chartSpecs(gpus) {
  const specs = [
    { id: 'tok', title: 'Output tokens / s', fmt: fixed(1), series: [{ col: 'out_tok_s', label: 'tok/s' }] },
    {
      id: 'ttft',
      title: 'Time to first token (ms)',
      fmt: fixed(1),
      series: [
        { col: 'ttft_p50_ms', label: 'p50' },
        { col: 'ttft_p99_ms', label: 'p99' },
      ],
    },
    {
      id: 'itl',
      title: 'Inter-token latency (ms)',
      fmt: fixed(2),
      series: [
        { col: 'itl_p50_ms', label: 'p50' },
        { col: 'itl_p99_ms', label: 'p99' },
      ],
    },
    {
      id: 'req',
      title: 'Requests',
      fmt: fixed(0),
      series: [
        { col: 'running', label: 'running' },
        { col: 'waiting', label: 'waiting' },
      ],
    },
    {
      id: 'kv',
      title: 'KV cache use and prefix-cache hit rate (%)',
      fmt: fixed(1),
      series: [
        { col: 'kv_pct', label: 'KV used' },
        { col: 'prefix_hit_pct', label: 'prefix hits' },
      ],
    },
    {
      id: 'cost',
      title: 'USD per 1k output tokens (60 s window, log scale)',
      fmt: usd,
      log: true,
      series: [
        { col: 'usd_per_1k_busy', label: 'busy' },
        { col: 'usd_per_1k_all_in', label: 'all-in (idle included)' },
      ],
    },
    {
      id: 'util',
      title: 'Utilisation (%)',
      fmt: fixed(1),
      series: [
        { col: 'cpu_process_pct', label: 'CPU (server)' },
        { col: 'cpu_machine_pct', label: 'CPU (machine)' },
        ...gpus.map((g) => ({ col: `gpu${g.index}_util_pct`, label: `GPU ${g.index}` })),
      ],
    },
  ];
  if (gpus.length > 0) {
    specs.push(
      {
        id: 'gmem',
        title: 'GPU memory (GiB)',
        fmt: fixed(2),
        series: gpus.flatMap((g) => [
          { col: `gpu${g.index}_mem_used_gib`, label: `GPU ${g.index} used` },
          { col: `gpu${g.index}_mem_total_gib`, label: `GPU ${g.index} total` },
        ]),
      },
      {
        id: 'gpow',
        title: 'GPU power (W)',
        fmt: fixed(0),
        series: gpus.map((g) => ({ col: `gpu${g.index}_power_w`, label: `GPU ${g.index}` })),
      },
      {
        id: 'gtemp',
        title: 'GPU temperature (°C) and SM clock (MHz / 10)',
        fmt: fixed(0),
        series: gpus.flatMap((g) => [
          { col: `gpu${g.index}_temp_c`, label: `GPU ${g.index} °C` },
          { col: `gpu${g.index}_sm_clock_mhz`, label: `GPU ${g.index} MHz/10`, scale: 0.1 },
        ]),
      },
    );
  }
  return specs;
}

export class ChartGrid {
  constructor(container) {
    this.container = container;
    this.charts = new Map(); // id -> { spec, plot, el }
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(container);
  }

  /** Create the charts of specs that do not exist yet (a spec whose series changed is rebuilt). */
  ensure(specs) {
    for (const spec of specs) {
      const key = spec.series.map((s) => s.col).join(',');
      const have = this.charts.get(spec.id);
      if (have && have.key === key) continue;
      if (have) {
        have.plot.destroy();
        have.el.remove();
      }
      const el = document.createElement('div');
      el.className = 'chart';
      el.dataset.chart = spec.id;
      const h = document.createElement('h3');
      h.textContent = spec.title;
      const plotEl = document.createElement('div');
      plotEl.className = 'plot';
      el.append(h, plotEl);
      this.container.append(el);
      const opts = {
        width: Math.max(300, plotEl.clientWidth || 420),
        height: 170,
        // Cost spans decades (all-in after idle vs busy under load): a log axis keeps both readable.
        scales: { x: { time: true }, ...(spec.log ? { y: { distr: 3, log: 10 } } : {}) },
        axes: [
          { stroke: '#6b7280', grid: { stroke: '#eef0f4' } },
          {
            stroke: '#6b7280',
            size: 56,
            grid: { stroke: '#eef0f4' },
            values: (_u, vals) => vals.map((v) => (v == null ? '' : spec.fmt(v))),
            // On the log axis only decades get a label, a tick and a grid line.
            ...(spec.log
              ? {
                  filter: decadesOnly,
                  ticks: { filter: decadesOnly },
                  grid: { stroke: '#eef0f4', filter: decadesOnly },
                  values: (_u, vals) => vals.map((v) => (v == null ? '' : v >= 0.01 ? String(+v.toPrecision(1)) : v.toExponential(0))),
                }
              : {}),
          },
        ],
        series: [
          {},
          ...spec.series.map((s, i) => ({
            label: s.label,
            stroke: COLORS[i % COLORS.length],
            width: 1.6,
            spanGaps: false,
            points: { show: false },
            value: (_u, v) => spec.fmt(v),
          })),
        ],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
      };
      const plot = new uPlot(opts, [[], ...spec.series.map(() => [])], plotEl);
      this.charts.set(spec.id, { spec, plot, el, plotEl, key });
    }
  }

  /** Feed every chart the current columns (store.t in ms). */
  update(store) {
    const xs = store.t.map((t) => t / 1000);
    for (const { spec, plot } of this.charts.values()) {
      const ys = spec.series.map((s) => {
        const col = store[s.col];
        if (!col) return xs.map(() => null);
        return s.scale ? col.map((v) => (v == null ? null : v * s.scale)) : col;
      });
      plot.setData([xs, ...ys]);
    }
  }

  /** Number of non-null points each chart draws (the browser test reads it). */
  pointCounts() {
    const out = {};
    for (const [id, { plot }] of this.charts) out[id] = plot.data.slice(1).reduce((n, ys) => n + ys.filter((v) => v != null).length, 0);
    return out;
  }

  fit() {
    for (const { plot, plotEl } of this.charts.values()) {
      const w = plotEl.clientWidth;
      if (w > 0 && Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: 170 });
    }
  }
}
