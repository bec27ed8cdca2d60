// The dashboard: its static files (web/ and uPlot's dist files served from the npm package, so it
// works offline and loads no external asset), public because they hold no data; and the JSON it
// reads with the user's key: /metrics/series (live series, cost totals, per-key table) and
// /metrics/info (model and machine, from `doctor`).

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { EngineClient } from '../engine/engine-api.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import { TokenmillError } from '../util/errors.js';

export interface WebRouteOptions {
  readonly engine: EngineClient;
  readonly metrics: ServerMetrics;
  /** web/ (index.html and its scripts); null: no dashboard. */
  readonly webDir: string | null;
  /** What /metrics/info reports: the model and the machine (doctor's report), given by the CLI. */
  readonly info?: () => unknown;
}

/** Path prefix of every public dashboard file. */
export const WEB_PREFIX = '/web/';
const CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const FILE_RE = /^[a-z0-9][a-z0-9._-]*\.(?:js|css|svg)$/;

function uplotDist(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  } catch {
    return null;
  }
}

const VENDOR: Record<string, string> = { 'uplot.js': 'uPlot.iife.min.js', 'uplot.css': 'uPlot.min.css' };

async function sendFile(reply: FastifyReply, path: string, type: string): Promise<FastifyReply> {
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch {
    throw new TokenmillError('not_found', 'The dashboard file is not installed.');
  }
  return reply
    .type(type)
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'no-cache')
    .send(body);
}

function typeOf(file: string): string {
  return TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream';
}

export function registerWebRoutes(app: FastifyInstance, o: WebRouteOptions): void {
  app.get('/metrics/series', async (req) => {
    const raw = (req.query as Record<string, unknown>).since;
    const since = raw === undefined ? -Infinity : Number(raw);
    if (Number.isNaN(since))
      throw new TokenmillError('invalid_argument', `since must be a time in ms since the epoch, got '${String(raw)}'`, { param: 'since' });
    return seriesBody(o.metrics, since);
  });
  app.get('/metrics/info', async () => ({
    model: { id: o.engine.modelId, max_model_len: o.engine.maxModelLen },
    ...(o.info ? { machine: o.info() } : {}),
  }));

  const dir = o.webDir;
  if (dir === null) return;
  app.get('/', (_req, reply) => sendFile(reply, join(dir, 'index.html'), TYPES['.html']!));
  const vendor = uplotDist();
  app.get(`${WEB_PREFIX}vendor/:file`, (req, reply) => {
    const file = VENDOR[(req.params as { file: string }).file];
    if (file === undefined || vendor === null) throw new TokenmillError('not_found', 'Unknown dashboard file.');
    return sendFile(reply, join(vendor, file), typeOf(file));
  });
  app.get(`${WEB_PREFIX}:file`, (req, reply) => {
    const file = (req.params as { file: string }).file;
    if (!FILE_RE.test(file)) throw new TokenmillError('not_found', 'Unknown dashboard file.');
    return sendFile(reply, join(dir, file), typeOf(file));
  });
}

const num = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** The JSON of /metrics/series: rows after sinceMs as columns, cost totals, per-key table, GPUs. */
export function seriesBody(m: ServerMetrics, sinceMs: number): unknown {
  const t = m.ledger.sinceStart();
  const gpu = m.gpu?.latest ?? null;
  return {
    now: Date.now(),
    capacity: m.series.capacity,
    series: m.series.since(sinceMs),
    totals: {
      usd_per_hour: m.ledger.usdPerHour,
      usd_per_hour_source: m.price.source,
      usd_per_hour_basis: m.price.basis,
      uptime_s: t.wallSeconds,
      busy_s: t.busySeconds,
      generated_tokens: t.generatedTokens,
      busy_usd: t.busyUsd,
      all_in_usd: t.allInUsd,
      busy_usd_per_1k: num(t.busyUsdPer1k),
      all_in_usd_per_1k: num(t.allInUsdPer1k),
    },
    keys: [...m.ledger.totals()].map(([key, a]) => ({
      key,
      requests: a.numRequests,
      prompt_tokens: a.promptTokens,
      completion_tokens: a.completionTokens,
      cost_usd: a.costUsd,
    })),
    gpus: gpu?.devices.map((d) => ({ index: d.index, name: d.name })) ?? [],
    gpu_reason: gpu === null ? (m.gpu === null ? 'no GPU monitor' : 'no reading yet') : gpu.reason,
  };
}
