// The metrics-only listener (serve --metrics-port): plain node:http, GET /metrics and nothing else,
// no API key, so an endpoint picker (refreshing every 50 ms) and Prometheus can scrape without a
// bearer token. It holds no request data; restrict who reaches it with a NetworkPolicy.
// It keeps answering while the server drains (the picker must see the replica leave).

import { createServer, type Server } from 'node:http';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import { TokenmillError } from '../util/errors.js';

export interface MetricsListener {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function sendJsonError(res: import('node:http').ServerResponse, status: number, message: string, code: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify({ error: { message, type: status === 404 ? 'not_found_error' : 'invalid_request_error', param: null, code } }));
}

export async function startMetricsListener(metrics: ServerMetrics, opts: { host: string; port: number }): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics')
      return sendJsonError(res, 404, `Unknown route: ${req.method} ${path} (this port serves only GET /metrics)`, 'not_found');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendJsonError(res, 405, `${req.method} is not allowed on /metrics`, 'method_not_allowed');
    }
    metrics.render().then(
      (m) => {
        res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : m.body);
      },
      (e: Error) => sendJsonError(res, 500, `metrics collection failed: ${e.message}`, 'internal_error'),
    );
  });
  server.keepAliveTimeout = 65_000; // scrapers reuse one connection at 20 Hz
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE'
          ? new TokenmillError(
              'port_in_use',
              `--metrics-port ${opts.port} is in use on ${opts.host}: stop the other process or pass another port`,
              { param: '--metrics-port', cause: e },
            )
          : e,
      );
    });
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${shownHost}:${port}/metrics`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
