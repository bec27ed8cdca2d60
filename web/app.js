// The dashboard's controller: the API key (this tab's sessionStorage only; sent as a bearer token on
// every API call), a 1 s poll of /metrics/series that asks only for rows newer than the last one,
// the figure cards, the per-key table and the model/machine panel. Text goes in with textContent.
import { ChartGrid, chartSpecs } from './charts.js';
import { startPlayground } from './playground.js';

const $ = (id) => document.getElementById(id);
const WINDOW_MS = 15 * 60 * 1000;
const REFRESH_MS = 1000;

const state = {
  key: sessionStorage.getItem('tokenmill-key') || '',
  connected: false,
  store: null,
  lastT: null,
  gpus: [],
  info: null,
  inFlight: false,
};

/** fetch with the user's key; throws an Error carrying the server's OpenAI-style message. */
export async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (state.key) headers.authorization = `Bearer ${state.key}`;
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try {
      msg = (await res.json()).error.message || msg;
    } catch {
      /* not JSON */
    }
    const e = new Error(msg);
    e.status = res.status;
    throw e;
  }
  return res;
}

export const currentModel = () => (state.info ? state.info.model.id : null);

function setConn(kind, text) {
  const el = $('conn');
  el.className = `pill ${kind}`;
  el.textContent = text;
}

function fmtUsd(v, digits = 6) {
  if (v == null || !Number.isFinite(v)) return '–';
  return '$' + (v !== 0 && Math.abs(v) < 1e-4 ? v.toExponential(2) : v.toFixed(digits));
}
const fmtNum = (v, d = 0) =>
  v == null || !Number.isFinite(v) ? '–' : v.toLocaleString(undefined, { maximumFractionDigits: d, minimumFractionDigits: d });
function fmtDuration(s) {
  if (!Number.isFinite(s)) return '–';
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = Math.floor(s % 60);
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${sec}s` : `${sec}s`;
}

/** Append incremental columns to the store and drop rows older than the window. */
function merge(series) {
  if (!state.store) state.store = { t: [] };
  const s = state.store;
  const n = series.t.length;
  for (const col of Object.keys(series)) if (!s[col]) s[col] = s.t.map(() => null);
  for (const col of Object.keys(s)) {
    const add = series[col] || new Array(n).fill(null);
    for (let i = 0; i < n; i++) s[col].push(add[i]);
  }
  if (n > 0) state.lastT = series.t[n - 1];
  const cutoff = (state.lastT ?? 0) - WINDOW_MS;
  let drop = 0;
  while (drop < s.t.length && s.t[drop] < cutoff) drop++;
  if (drop > 0) for (const col of Object.keys(s)) s[col].splice(0, drop);
}

const last = (col) => {
  const a = state.store?.[col];
  if (!a) return null;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] != null) return a[i];
  return null;
};

function renderCards(totals) {
  const cards = [
    ['output tok/s', fmtNum(last('out_tok_s'), 1)],
    ['running / waiting', `${fmtNum(last('running'))} / ${fmtNum(last('waiting'))}`],
    ['KV cache used', last('kv_pct') == null ? '–' : `${fmtNum(last('kv_pct'), 1)} %`],
    ['TTFT p50 (ms)', fmtNum(last('ttft_p50_ms'), 1)],
    ['USD / 1k out, busy (60 s)', fmtUsd(last('usd_per_1k_busy'))],
    ['USD / 1k out, all-in (60 s)', fmtUsd(last('usd_per_1k_all_in'))],
    ['spent, busy (since start)', fmtUsd(totals.busy_usd)],
    ['spent, all-in = price × uptime', fmtUsd(totals.all_in_usd)],
    ['tokens generated', fmtNum(totals.generated_tokens)],
    [
      'uptime (busy share)',
      `${fmtDuration(totals.uptime_s)} (${totals.uptime_s > 0 ? fmtNum((100 * totals.busy_s) / totals.uptime_s, 1) : '–'} %)`,
    ],
    [
      totals.usd_per_hour_source === 'assumed' ? `price (assumed: ${totals.usd_per_hour_basis}; set --usd-per-hour)` : 'price',
      `$${fmtNum(totals.usd_per_hour, 3)} / h`,
    ],
  ];
  const box = $('cards');
  box.replaceChildren(
    ...cards.map(([label, value]) => {
      const c = document.createElement('div');
      c.className = 'card';
      const b = document.createElement('b');
      b.textContent = value;
      b.title = value;
      const s = document.createElement('span');
      s.textContent = label;
      c.append(b, s);
      return c;
    }),
  );
}

function renderKeys(keys, totals) {
  const body = $('keys');
  if (keys.length === 0) return;
  const busy = totals.busy_usd || 0;
  body.replaceChildren(
    ...keys
      .sort((a, b) => b.cost_usd - a.cost_usd)
      .map((k) => {
        const tr = document.createElement('tr');
        const cells = [
          k.key,
          fmtNum(k.requests),
          fmtNum(k.prompt_tokens),
          fmtNum(k.completion_tokens),
          fmtUsd(k.cost_usd, 8),
          busy > 0 ? `${fmtNum((100 * k.cost_usd) / busy, 1)} %` : '–',
        ];
        cells.forEach((v, i) => {
          const td = document.createElement('td');
          td.textContent = v;
          if (i > 0) td.className = 'n';
          tr.append(td);
        });
        return tr;
      }),
  );
  const sum = keys.reduce((s, k) => s + k.cost_usd, 0);
  $('cost-note').textContent =
    `Keys total ${fmtUsd(sum, 8)} of ${fmtUsd(busy, 8)} busy (in-flight requests are added when they finish); all-in ` +
    `${fmtUsd(totals.all_in_usd, 6)} includes idle time.`;
}

function renderMachine(info) {
  const d = info.machine?.doctor || {};
  const cpu = d.cpu || {};
  const rows = [
    ['model', info.model.id],
    ['max length', `${fmtNum(info.model.max_model_len)} tokens`],
    ['backend', info.machine?.backend || '–'],
    ['tokenmill', d.version || '–'],
    ['node', d.node ? `${d.node} (${d.platform}/${d.arch})` : '–'],
    ['CPU', cpu.model ? `${cpu.model}, ${cpu.numLogicalCores} logical cores, ${(cpu.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM` : '–'],
    [
      'ISA',
      cpu.flags
        ? Object.keys(cpu.flags)
            .filter((f) => cpu.flags[f])
            .join(' ') || 'none of interest'
        : '–',
    ],
    ['CPU addon', d.cpuAddon ? (d.cpuAddon.available ? 'yes' : `no (${d.cpuAddon.reason})`) : '–'],
    ['CUDA', d.cuda ? (d.cuda.available ? d.cuda.reason : `no (${d.cuda.reason})`) : '–'],
  ];
  for (const [i, g] of (d.cuda?.devices || []).entries())
    rows.push([`GPU ${i}`, `${g.name}, sm ${g.computeCapability}, ${(g.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB`]);
  for (const g of state.gpus) rows.push([`NVML ${g.index}`, g.name]);
  $('machine').replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }),
  );
  $('model-id').textContent = info.model.id;
}

const grid = new ChartGrid($('charts'));
grid.ensure(chartSpecs([]));

async function refresh() {
  if (state.inFlight) return; // never pile up polls behind a slow server
  state.inFlight = true;
  try {
    if (!state.info) {
      state.info = await (await api('/metrics/info')).json();
      renderMachine(state.info);
    }
    const q = state.lastT == null ? '' : `?since=${state.lastT}`;
    const body = await (await api(`/metrics/series${q}`)).json();
    merge(body.series);
    if (JSON.stringify(body.gpus) !== JSON.stringify(state.gpus)) {
      state.gpus = body.gpus;
      grid.ensure(chartSpecs(state.gpus));
      renderMachine(state.info);
    }
    $('gpu-note').textContent = state.gpus.length === 0 ? `No GPU figures: ${body.gpu_reason || 'NVML reports no device'}.` : '';
    grid.update(state.store);
    renderCards(body.totals);
    renderKeys(body.keys, body.totals);
    $('series-note').textContent = `(${state.store.t.length} samples, every ${REFRESH_MS / 1000} s)`;
    $('status').textContent = '';
    if (!state.connected) setConn('ok', 'connected');
    state.connected = true;
  } catch (e) {
    state.connected = false;
    setConn('bad', e.status === 401 ? 'key needed' : 'error');
    $('status').textContent = e.status === 401 ? `${e.message} Enter an API key above.` : String(e.message || e);
  } finally {
    state.inFlight = false;
  }
}

$('key').value = state.key;
$('key-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.key = $('key').value.trim();
  sessionStorage.setItem('tokenmill-key', state.key);
  state.info = null;
  refresh();
});

window.tokenmillDashboard = { state, grid }; // for the browser test and the curious
startPlayground({ api, currentModel });
refresh();
setInterval(refresh, REFRESH_MS);
