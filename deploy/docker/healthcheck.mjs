#!/usr/bin/env node
// The image's HEALTHCHECK: GET /health on the address clients reach, not on loopback. It asks the
// container's first non-internal IPv4 address (what `-p` forwards to) at TOKENMILL_PORT (default
// 8000), so a server bound to 127.0.0.1 inside the container counts as unhealthy (clients cannot
// reach it), as does no answer within the timeout or any status but 200. Loopback is used only
// when the container has no other interface (--network none). TOKENMILL_HEALTH_HOST overrides the
// address; TOKENMILL_HEALTH_TIMEOUT_MS the wait (default 4000, inside HEALTHCHECK --timeout=5s).
// Exit 0 healthy, 1 not, with one line saying why.
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The first non-internal IPv4 address, else 127.0.0.1. */
export function reachableAddress(ifaces) {
  for (const list of Object.values(ifaces ?? {})) {
    for (const a of list ?? []) {
      if (!a.internal && (a.family === 'IPv4' || a.family === 4)) return a.address;
    }
  }
  return '127.0.0.1';
}

export async function checkHealth({ host, port, timeoutMs = 4000, fetchImpl = fetch }) {
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/health`;
  try {
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel().catch(() => {});
    return res.status === 200
      ? { ok: true, message: `healthy: ${url} answered 200` }
      : { ok: false, message: `unhealthy: ${url} answered ${res.status}` };
  } catch (e) {
    const why = e?.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e?.cause?.code ?? e?.message ?? String(e));
    return { ok: false, message: `unhealthy: ${url} unreachable (${why})` };
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const host = process.env.TOKENMILL_HEALTH_HOST || reachableAddress(networkInterfaces());
  const port = Number(process.env.TOKENMILL_PORT || 8000);
  const timeoutMs = Number(process.env.TOKENMILL_HEALTH_TIMEOUT_MS) > 0 ? Number(process.env.TOKENMILL_HEALTH_TIMEOUT_MS) : 4000;
  const r = await checkHealth({ host, port, timeoutMs });
  (r.ok ? process.stdout : process.stderr).write(`${r.message}\n`);
  process.exit(r.ok ? 0 : 1);
}
