// Request hooks, in order: request id echo, CORS (only with an allowlist; preflights answered here),
// API-key auth (every route but /health, /ready and the dashboard's static files, which hold no data;
// /metrics and its JSON only when public), drain refusal,
// and the JSON content-type check (415) before any body is parsed.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TokenmillError } from '../util/errors.js';
import { bearerToken, type ApiKeyStore } from './auth.js';
import { sendError } from './http-errors.js';

export interface HookOptions {
  readonly keys: ApiKeyStore;
  readonly metricsPublic: boolean;
  readonly corsOrigins: readonly string[];
  isDraining(): boolean;
}

const ALWAYS_PUBLIC = new Set(['/health', '/ready', '/']);
const METRICS_PATHS = new Set(['/metrics', '/metrics/series', '/metrics/info']);
/** Routes still answered while draining (probes and observability). */
const DRAIN_ALLOWED = new Set(['/health', '/ready', '/version', '/', ...METRICS_PATHS]);
/** The dashboard's scripts and styles (routes-web.ts WEB_PREFIX): public, no data in them. */
const isWebFile = (path: string): boolean => path.startsWith('/web/');

declare module 'fastify' {
  interface FastifyRequest {
    /** API key id ('k1-abcd') or 'anonymous' when auth is off. */
    account: string;
  }
}

/** Probes, scrapes and the dashboard's polls: work a monitor does, not load (drains allow them; they wake no idle release). */
export function isMonitoringPath(path: string): boolean {
  return DRAIN_ALLOWED.has(path);
}

export function pathOf(req: FastifyRequest): string {
  const q = req.url.indexOf('?');
  return q < 0 ? req.url : req.url.slice(0, q);
}

function applyCors(req: FastifyRequest, reply: FastifyReply, origins: readonly string[]): void {
  const origin = req.headers.origin;
  if (origins.length === 0 || typeof origin !== 'string') return;
  const wildcard = origins.includes('*');
  if (!wildcard && !origins.includes(origin)) return;
  // A wildcard never goes together with credentials: we never send Allow-Credentials at all.
  reply.header('access-control-allow-origin', wildcard ? '*' : origin);
  if (!wildcard) reply.header('vary', 'Origin');
  reply.header('access-control-expose-headers', 'x-request-id, x-tokenmill-cost-usd, retry-after');
  if (req.method === 'OPTIONS') {
    reply.header('access-control-allow-methods', 'GET, POST, OPTIONS');
    reply.header('access-control-allow-headers', 'authorization, content-type, x-request-id');
    reply.header('access-control-max-age', '600');
  }
}

export function installHooks(app: FastifyInstance, opts: HookOptions): void {
  app.decorateRequest('account', '');
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    applyCors(req, reply, opts.corsOrigins);
    if (req.method === 'OPTIONS' && opts.corsOrigins.length > 0 && req.headers['access-control-request-method']) {
      return reply.code(204).send();
    }
    const path = pathOf(req);
    const isPublic = ALWAYS_PUBLIC.has(path) || isWebFile(path) || (METRICS_PATHS.has(path) && opts.metricsPublic);
    const presented = bearerToken(req.headers.authorization);
    const account = opts.keys.verify(presented);
    if (account === null && !isPublic) {
      reply.header('www-authenticate', 'Bearer');
      const msg = presented === null ? 'Missing API key: send Authorization: Bearer <key>.' : 'Invalid API key.';
      return sendError(reply, new TokenmillError('invalid_api_key', msg));
    }
    req.account = account ?? 'anonymous';
    if (opts.isDraining() && !DRAIN_ALLOWED.has(path) && !isWebFile(path)) {
      return sendError(
        reply,
        new TokenmillError('server_draining', 'The server is shutting down and accepts no new requests.', {
          details: { retryAfterSeconds: 5 },
        }),
      );
    }
    if (req.method === 'POST') {
      const ct = String(req.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase();
      if (ct !== 'application/json') {
        return sendError(
          reply,
          new TokenmillError('unsupported_media_type', `Content-Type must be application/json (got '${ct || 'none'}').`),
        );
      }
    }
    return undefined;
  });
}
