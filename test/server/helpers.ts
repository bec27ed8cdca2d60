// Test helpers: a live TokenmillServer on 127.0.0.1:0 over the real engine on a tiny model
// (startRealLive; faults are injected below it, see ModelFault), an openai client for it, SSE readers
// and until(): polling for a condition with a generous bound, never a sleep as synchronisation.

import OpenAI from 'openai';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { createServer, type ServerOptions, type TokenmillServer } from '../../src/server/app.js';
import { FakeFrontend } from './byte-frontend.js';
import { tinyRealEngine, TINY_MODEL_ID, type RecordingEngine, type TinyEngineOptions } from './real-engine.js';

/** Resolves once cond() holds, polling every 10 ms; fails after timeoutMs (generous: a loaded 2-core machine). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface RealLive {
  server: TokenmillServer;
  /** A spy over the real AsyncEngine (records requests and aborts). */
  engine: RecordingEngine;
  url: string;
  client: OpenAI;
  close(): Promise<void>;
}

/** The real AsyncEngine on the tiny byte model behind the server (model id TINY_MODEL_ID). */
export async function startRealLive(
  opts: { engine?: TinyEngineOptions; server?: Partial<ServerOptions>; apiKey?: string } = {},
): Promise<RealLive> {
  const metrics = new ServerMetrics({ modelName: TINY_MODEL_ID, usdPerHour: 1 });
  const engine = await tinyRealEngine({ observer: metrics, ...opts.engine });
  const server = await createServer({ engine, frontend: new FakeFrontend(), metrics, ...opts.server });
  const { url } = await server.listen({ port: 0 });
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: opts.apiKey ?? 'sk-test-anything', maxRetries: 0, timeout: 10_000 });
  return { server, engine, url, client, close: () => server.close() };
}

/** Raw SSE events (data payloads and comments) from a streaming POST. */
export async function rawSse(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; events: string[]; comments: string[] }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test-anything', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const events: string[] = [];
  const comments: string[] = [];
  for (const block of text.split('\n\n')) {
    for (const line of block.split('\n')) {
      if (line.startsWith('data: ')) events.push(line.slice(6));
      else if (line.startsWith(':')) comments.push(line.slice(1).trim());
    }
  }
  return { status: res.status, headers: res.headers, events, comments };
}

/** A streaming POST read incrementally: wait for the first data event, then for the end. */
export async function openSse(
  url: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<{ status: number; firstEvent: Promise<void>; done: Promise<string[]> }> {
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const res = await fetch(url, signal ? { ...init, signal } : init);
  const events: string[] = [];
  let signalFirst: () => void = () => {};
  const firstEvent = new Promise<void>((r) => (signalFirst = r));
  const done = (async () => {
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith('data: ')) {
          events.push(block.slice(6));
          signalFirst();
        }
      }
    }
    signalFirst();
    return events;
  })();
  return { status: res.status, firstEvent, done };
}
