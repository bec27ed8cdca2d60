// One soak request: a seeded mix of streaming and non-streaming chat and completions, n > 1,
// logprobs and stop strings, some of them abandoned by the client at a chosen point (before the
// headers, after the first chunk, mid-stream). Returns what happened; never throws.
import type { Rng } from '../../test/reliability/mutation/mutator.js';

export type Kind = 'stream-chat' | 'chat' | 'completion-n' | 'stream-chat-n' | 'logprobs' | 'stop';
export type Disconnect = 'before-headers' | 'after-first-chunk' | 'mid-stream';

export interface RequestOutcome {
  readonly kind: Kind;
  /** HTTP status, or 0 when no response arrived (abandoned before headers, connection error, timeout). */
  readonly status: number;
  readonly disconnect: Disconnect | null;
  /** The disconnect drawn for this request; it does not happen when the headers or the stream's end come first. */
  readonly drawnDisconnect: Disconnect | null;
  readonly timedOut: boolean;
  /** A 503/429 that said when to come back. */
  readonly retryAfter: boolean;
  /** The stream ended without [DONE] or a finish_reason although the client kept reading. */
  readonly truncated: boolean;
  readonly finishReasons: readonly string[];
  readonly startMs: number;
  readonly latencyMs: number;
  readonly ttftMs: number | null;
  readonly error?: string;
  /** An error event inside a 200 stream (the server failed after the headers went out): its envelope, shortened. */
  readonly streamError?: string;
  /** Why the stream counts as truncated (set exactly when truncated is). */
  readonly truncation?: TruncationDetail;
}

/** What a truncated response looked like from the client, so one in thousands explains itself. */
export interface TruncationDetail {
  readonly kind: Kind;
  readonly status: number;
  /** The disconnect the client drew for this request, even when it did not happen (the headers won, the stream ended first). */
  readonly drawnDisconnect: Disconnect | null;
  /** 'no-done': the body ended cleanly without [DONE]; 'read-error': reading the body threw. */
  readonly reason: 'no-done' | 'read-error';
  /** name: message (cause: code/message) of what reading threw, if anything. */
  readonly error: string | null;
  /** Why the client's AbortSignal fired, if it did ('timeout', 'before-headers'); null: it never fired. */
  readonly abortReason: string | null;
  readonly bytes: number;
  readonly events: number;
  /** The last complete SSE event (first 200 characters) and any partial one left in the buffer. */
  readonly lastEvent: string | null;
  readonly partial: string;
  readonly headersMs: number;
  readonly elapsedMs: number;
}

function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const c = e.cause as { code?: string; name?: string; message?: string } | undefined;
  const cause = c === undefined ? '' : ` (cause: ${[c.name, c.code, c.message].filter(Boolean).join(': ')})`;
  return `${e.name}: ${e.message}${cause}`.slice(0, 300);
}

const KINDS: readonly [Kind, number][] = [
  ['stream-chat', 45],
  ['chat', 15],
  ['completion-n', 10],
  ['stream-chat-n', 5],
  ['logprobs', 10],
  ['stop', 15],
];

function pickKind(rng: Rng): Kind {
  let r = rng.int(100);
  for (const [k, w] of KINDS) if ((r -= w) < 0) return k;
  return 'stream-chat';
}

const WORDS = [
  'once',
  'upon',
  'a',
  'time',
  'there',
  'was',
  'little',
  'girl',
  'named',
  'lily',
  'she',
  'liked',
  'to',
  'play',
  'in',
  'the',
  'park',
];

function body(kind: Kind, rng: Rng, model: string, maxTokens: number): { path: string; json: Record<string, unknown>; stream: boolean } {
  const words = Array.from({ length: 3 + rng.int(24) }, () => rng.pick(WORDS)).join(' ');
  const common = { model, max_tokens: 1 + rng.int(maxTokens), temperature: 0.8, seed: rng.int(1 << 30) };
  const chat = (extra: Record<string, unknown>, stream: boolean) => ({
    path: '/v1/chat/completions',
    stream,
    json: { ...common, messages: [{ role: 'user', content: words }], stream, ...extra },
  });
  switch (kind) {
    case 'stream-chat':
      return chat({}, true);
    case 'chat':
      return chat({}, false);
    case 'stream-chat-n':
      return chat({ n: 2 }, true);
    case 'logprobs':
      return chat({ logprobs: true, top_logprobs: 3 }, true);
    case 'completion-n':
      return { path: '/v1/completions', stream: false, json: { ...common, prompt: words, n: 2 } };
    case 'stop':
      return { path: '/v1/completions', stream: true, json: { ...common, prompt: words, stream: true, stop: ['e', '\n\n', ' the'] } };
  }
}

export interface RequestSpec {
  readonly url: string;
  readonly model: string;
  readonly headers: Record<string, string>;
  readonly maxTokens: number;
  readonly disconnectShare: number;
  readonly timeoutMs: number;
  readonly t0: number;
  /** Force one kind (the overload mode sends streaming chat only). */
  readonly kind?: Kind;
  /** A before-headers disconnect aborts after a uniform 0 .. n-1 ms (default 3: it mostly beats the headers). */
  readonly beforeHeadersMs?: number;
}

/** Issue one seeded request and report its outcome. */
export async function soakRequest(spec: RequestSpec, rng: Rng): Promise<RequestOutcome> {
  const kind = spec.kind ?? pickKind(rng);
  const b = body(kind, rng, spec.model, spec.maxTokens);
  let disconnect: Disconnect | null = null;
  if (rng.chance(spec.disconnectShare))
    disconnect = b.stream ? rng.pick(['before-headers', 'after-first-chunk', 'mid-stream'] as const) : 'before-headers';
  const drawnDisconnect = disconnect;
  const midAfter = 2 + rng.int(12);
  const ac = new AbortController();
  const start = performance.now();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort('timeout');
  }, spec.timeoutMs);
  let ttftMs: number | null = null;
  const base = {
    kind,
    disconnect,
    drawnDisconnect,
    startMs: start - spec.t0,
    retryAfter: false,
    truncated: false,
    finishReasons: [] as string[],
  };
  const done = (o: Partial<RequestOutcome> & { status: number }): RequestOutcome => {
    clearTimeout(timer);
    return { ...base, timedOut, latencyMs: performance.now() - start, ttftMs, ...o };
  };
  const early =
    disconnect === 'before-headers' ? setTimeout(() => ac.abort('before-headers'), rng.int(spec.beforeHeadersMs ?? 3)) : undefined;
  let res: Response;
  try {
    res = await fetch(spec.url + b.path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...spec.headers },
      body: JSON.stringify(b.json),
      signal: ac.signal,
    });
  } catch (e) {
    return done({ status: 0, error: (e as Error).name });
  } finally {
    // The headers won the race: from here on this is an ordinary request, and the abort timer must
    // not cut the body it goes on to read (that was counted as a truncated stream).
    clearTimeout(early);
  }
  const headersMs = performance.now() - start;
  if (ac.signal.aborted && ac.signal.reason === 'before-headers') {
    // The abort fired in the instant between the response arriving and this line: the client left.
    void res.body?.cancel().catch(() => undefined);
    return done({ status: 0, error: 'AbortError' });
  }
  if (disconnect === 'before-headers') disconnect = null; // the headers won the race: an ordinary request
  base.disconnect = disconnect;
  base.retryAfter = res.headers.get('retry-after') !== null;
  let bytes = 0;
  let events = 0;
  let lastEvent: string | null = null;
  let buf = '';
  const truncation = (reason: TruncationDetail['reason'], e: unknown): TruncationDetail => ({
    kind,
    status: res.status,
    drawnDisconnect,
    reason,
    error: e === null ? null : describeError(e),
    abortReason: ac.signal.aborted ? String(ac.signal.reason) : null,
    bytes,
    events,
    lastEvent: lastEvent?.slice(0, 200) ?? null,
    partial: buf.slice(0, 200),
    headersMs,
    elapsedMs: performance.now() - start,
  });
  try {
    if (!res.ok || !b.stream) {
      const text = await res.text();
      bytes = text.length;
      if (res.ok) {
        const j = JSON.parse(text) as { choices: { finish_reason: string }[] };
        base.finishReasons = j.choices.map((c) => c.finish_reason);
      }
      return done({ status: res.status, ...(res.ok ? {} : { error: text.slice(0, 200) }) });
    }
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let chunks = 0;
    let sawDone = false;
    let streamError: string | undefined;
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      chunks++;
      bytes += value.byteLength;
      ttftMs ??= performance.now() - start;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        events++;
        lastEvent = ev;
        if (ev === 'data: [DONE]') sawDone = true;
        else if (ev.startsWith('data: ')) {
          const j = JSON.parse(ev.slice(6)) as { choices?: { finish_reason?: string | null }[]; error?: unknown };
          for (const c of j.choices ?? []) if (c.finish_reason) base.finishReasons.push(c.finish_reason);
          if (j.error !== undefined) streamError ??= JSON.stringify(j.error).slice(0, 300);
        }
      }
      if ((disconnect === 'after-first-chunk' && chunks >= 1) || (disconnect === 'mid-stream' && chunks >= midAfter)) {
        await reader.cancel();
        return done({ status: res.status, ...(streamError !== undefined ? { streamError } : {}) });
      }
    }
    if (disconnect !== null) base.disconnect = null; // the stream ended before the client could leave
    return done({
      status: res.status,
      truncated: !sawDone,
      ...(sawDone ? {} : { truncation: truncation('no-done', null) }),
      ...(streamError !== undefined ? { streamError } : {}),
    });
  } catch (e) {
    if (timedOut) return done({ status: res.status, error: describeError(e) });
    return done({ status: res.status, truncated: true, error: describeError(e), truncation: truncation('read-error', e) });
  }
}
