// HTTP load generator for any OpenAI-compatible server: streaming /v1/completions over fetch, SSE
// parsed here (no client library between the socket and the clock), a closed loop of N workers or
// Poisson arrivals (seeded), per-request TTFT / inter-chunk gaps / end-to-end, errors by class.
// It measures; summarising (percentiles, goodput, cost) lives in load-summary.ts.
import { SseParser } from './sse-parser.js';

export interface LoadPrompt {
  /** Text, or token ids (OpenAI completions accept both). */
  readonly prompt: string | readonly number[];
  readonly maxTokens: number;
}

export interface LoadGenOptions {
  /** Server root or its /v1 base: http://host:port or http://host:port/v1. */
  readonly baseUrl: string;
  readonly model: string;
  readonly apiKey?: string;
  /** One request per prompt, sent in this order. */
  readonly prompts: readonly LoadPrompt[];
  /** Most requests in flight (closed loop when requestRate is null). */
  readonly concurrency: number;
  /** Poisson arrivals at this many requests per second; null or Infinity: as fast as concurrency allows. */
  readonly requestRate?: number | null;
  readonly seed?: number;
  /** Per-request limit, from send to the last byte. */
  readonly timeoutMs?: number;
  /** Send ignore_eos (vLLM / tokenmill extension) so output lengths are exact. Default true. */
  readonly ignoreEos?: boolean;
  /** Extra body fields (e.g. temperature). */
  readonly extraBody?: Readonly<Record<string, unknown>>;
  readonly fetchImpl?: typeof fetch;
  readonly onRequestDone?: (r: RequestResult, numDone: number) => void;
  readonly now?: () => number;
}

export type ErrorClass = `http_${number}` | 'timeout' | 'connection' | 'stream';

export interface RequestResult {
  readonly index: number;
  readonly ok: boolean;
  readonly errorClass: ErrorClass | null;
  readonly errorMessage: string | null;
  /** ms since the run started, when the request was sent. */
  readonly sentAtMs: number;
  /** Send -> first chunk with text (null if none arrived). */
  readonly ttftMs: number | null;
  /** Gaps between successive text chunks, ms. */
  readonly itlMs: readonly number[];
  /** Send -> end of stream. */
  readonly e2eMs: number;
  /** usage.completion_tokens when the server sent it, else the number of text chunks. */
  readonly outputTokens: number;
  readonly promptTokens: number | null;
  readonly finishReason: string | null;
}

export interface LoadRun {
  readonly results: readonly RequestResult[];
  /** First send -> last request done, seconds. */
  readonly wallS: number;
}

/** mulberry32: a small seeded PRNG in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Send offsets (ms from start) of n Poisson arrivals at ratePerS; seeded, so runs replay. */
export function poissonSchedule(n: number, ratePerS: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    out.push(t);
    t += (-Math.log(1 - rand()) / ratePerS) * 1000;
  }
  return out;
}

export function completionsUrl(baseUrl: string): string {
  const b = baseUrl.replace(/\/+$/, '');
  return /\/v1$/.test(b) ? `${b}/completions` : `${b}/v1/completions`;
}

function classifyFetchError(e: unknown, timedOut: boolean): { cls: ErrorClass; message: string } {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (timedOut || err?.name === 'TimeoutError') return { cls: 'timeout', message: 'request timed out' };
  const detail = err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
  return { cls: 'connection', message: String(detail) };
}

interface StreamState {
  firstMs: number | null;
  lastMs: number | null;
  itl: number[];
  chunks: number;
  usageTokens: number | null;
  promptTokens: number | null;
  finish: string | null;
  done: boolean;
  streamError: string | null;
}

function onData(s: StreamState, data: string, at: number): void {
  if (data === '[DONE]') {
    s.done = true;
    return;
  }
  let j: {
    choices?: { text?: string; delta?: { content?: string }; finish_reason?: string | null }[];
    usage?: { completion_tokens?: number; prompt_tokens?: number } | null;
    error?: { message?: string };
  };
  try {
    j = JSON.parse(data);
  } catch {
    s.streamError = `malformed JSON in the stream: ${data.slice(0, 80)}`;
    return;
  }
  if (j.error !== undefined) {
    s.streamError = `error in the stream: ${j.error?.message ?? 'unknown'}`;
    return;
  }
  if (j.usage) {
    if (typeof j.usage.completion_tokens === 'number') s.usageTokens = j.usage.completion_tokens;
    if (typeof j.usage.prompt_tokens === 'number') s.promptTokens = j.usage.prompt_tokens;
  }
  const c = j.choices?.[0];
  if (c === undefined) return;
  if (c.finish_reason) s.finish = c.finish_reason;
  const text = c.text ?? c.delta?.content ?? '';
  if (text.length === 0) return;
  if (s.firstMs === null) s.firstMs = at;
  else s.itl.push(at - s.lastMs!);
  s.lastMs = at;
  s.chunks++;
}

async function oneRequest(o: LoadGenOptions, index: number, t0: number): Promise<RequestResult> {
  const now = o.now ?? (() => performance.now());
  const p = o.prompts[index]!;
  const body = {
    model: o.model,
    prompt: p.prompt,
    max_tokens: p.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0,
    ...(o.ignoreEos !== false ? { ignore_eos: true } : {}),
    ...o.extraBody,
  };
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, o.timeoutMs ?? 600_000);
  const start = now();
  const s: StreamState = {
    firstMs: null,
    lastMs: null,
    itl: [],
    chunks: 0,
    usageTokens: null,
    promptTokens: null,
    finish: null,
    done: false,
    streamError: null,
  };
  const result = (ok: boolean, cls: ErrorClass | null, msg: string | null): RequestResult => ({
    index,
    ok,
    errorClass: cls,
    errorMessage: msg,
    sentAtMs: start - t0,
    ttftMs: s.firstMs === null ? null : s.firstMs - start,
    itlMs: s.itl,
    e2eMs: now() - start,
    outputTokens: s.usageTokens ?? s.chunks,
    promptTokens: s.promptTokens,
    finishReason: s.finish,
  });
  try {
    const res = await (o.fetchImpl ?? fetch)(completionsUrl(o.baseUrl), {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: ac.signal,
    });
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      return result(false, `http_${res.status}`, text.slice(0, 200));
    }
    if (res.body === null) return result(false, 'stream', 'response has no body');
    const parser = new SseParser();
    const reader = res.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const at = now();
      for (const ev of parser.push(value)) onData(s, ev.data, at);
      if (s.streamError !== null) {
        await reader.cancel().catch(() => {});
        return result(false, 'stream', s.streamError);
      }
    }
    parser.end();
    if (!s.done) return result(false, 'stream', 'the stream ended without [DONE]');
    return result(true, null, null);
  } catch (e) {
    const { cls, message } = classifyFetchError(e, timedOut);
    return result(false, cls, message);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Run every prompt once; resolves when all requests have finished (successfully or not). */
export async function runLoad(o: LoadGenOptions): Promise<LoadRun> {
  const now = o.now ?? (() => performance.now());
  const n = o.prompts.length;
  const rate = o.requestRate ?? null;
  const schedule = rate !== null && Number.isFinite(rate) ? poissonSchedule(n, rate, o.seed ?? 0) : null;
  const results: RequestResult[] = new Array(n);
  const t0 = now();
  let next = 0;
  let numDone = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      if (schedule !== null) await sleep(t0 + schedule[i]! - now());
      const r = await oneRequest(o, i, t0);
      results[i] = r;
      numDone++;
      o.onRequestDone?.(r, numDone);
    }
  };
  const numWorkers = Math.max(1, Math.min(n, schedule !== null && !Number.isFinite(o.concurrency) ? n : o.concurrency));
  await Promise.all(Array.from({ length: numWorkers }, worker));
  return { results, wallS: (now() - t0) / 1000 };
}
