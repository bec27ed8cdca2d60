// Seeded bad and odd HTTP requests, one generator for two judges: the error-envelope fuzz
// (test/server/error-envelope-fuzz.test.ts: every 4xx is the OpenAI envelope, no 5xx) and the
// load-and-memory fuzz (bench/soak/fuzz-memory.ts and its CI-sized test: RSS stays bounded). Odd
// paths (malformed percent-escapes, dot segments, long and unicode paths), every method, content
// types, broken JSON, wrong types, huge numbers, unknown fields, long stop lists, invented keys,
// request ids, models and field names (values that must never become unbounded metric labels or map
// keys), bodies at and over the size limit, clients that hang up; mixed with small valid generations.
// The mix (FuzzMix) sets the shares; the vocabulary is the same for both. Pure: the same seed and mix
// give the same requests. Never asserts; the callers judge the answers.
import type { Xoshiro128 } from '../../src/model/prng.js';

export interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | null;
  /** Hang up this many ms after sending (a client that gives up); null: read the whole answer. */
  readonly abortAfterMs: number | null;
}

/** Shares of the odd cases. The defaults are the memory fuzz's: mostly well-formed routes, some huge bodies. */
export interface FuzzMix {
  /** An odd path instead of a route (default 0.15). */
  readonly oddPathShare?: number;
  /** The route's own method rather than any method (default 0.85). */
  readonly ownMethodShare?: number;
  /** content-type application/json rather than another or none (default 0.9). */
  readonly jsonShare?: number;
  /** A body near the size limit, below or above it (default 0.08). */
  readonly bigShare?: number;
  /** Whether big chat bodies (many messages) are among them (default true). */
  readonly bigChat?: boolean;
  /** Hang up within 50 ms (default 0.05). */
  readonly abortShare?: number;
}

/** The envelope fuzz's mix: odd paths, methods and content types often; no huge bodies, nobody hangs up. */
export const ENVELOPE_MIX: FuzzMix = { oddPathShare: 0.4, ownMethodShare: 0.6, jsonShare: 0.7, bigShare: 0, abortShare: 0 };

export const ROUTES = [
  '/v1/completions',
  '/v1/chat/completions',
  '/v1/models',
  '/v1/models/tiny',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/responses/resp_1',
  '/tokenize',
  '/detokenize',
  '/health',
  '/ready',
  '/version',
  '/metrics',
  '/',
];
export const ODD_PATHS = [
  '/%ff',
  '/%',
  '/%zz',
  '/v1/%',
  '/v1/chat/completions%',
  '/v1/models/%ff%fe',
  '/%2e%2e/%2e%2e/etc/passwd',
  '/%2e%2e/etc/passwd',
  '//',
  '/v1//completions',
  '/v1/./models',
  '/v1/../v1/models',
  '/..',
  `/v1/models/${'x'.repeat(3000)}`,
  '/v1/completions?x=%ff',
  '/v1/models?%',
  '/\u00e9t\u00e9',
  '/v1/chat/completions/',
  '/v1/models/',
  '/V1/MODELS',
  '/v1/completions#frag',
  '/%00',
  '/v1/models/%00',
  '/*',
  '/v1/models/%2F..%2F',
  '/favicon.ico',
  '/v2/completions',
  '/v2/x',
];
export const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'SEARCH'];
export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  'application/JSON',
  'application/json; charset=latin1',
  'application/jsonx',
  '*/*',
  'application/json;',
  ';;;',
];
const ODD_VALUES: readonly unknown[] = [
  null,
  true,
  -1,
  0,
  1e308,
  -1e308,
  1.5,
  2 ** 53 + 1,
  '',
  'x',
  '\u0000',
  '\ud800',
  [],
  [1, 'a'],
  {},
  { a: { b: [] } },
  'tiny',
  3,
  100000,
  [[1, 2]],
  ['a', 'b'],
];
const FIELDS = [
  'model',
  'prompt',
  'messages',
  'max_tokens',
  'temperature',
  'top_p',
  'n',
  'stream',
  'stop',
  'seed',
  'logprobs',
  'top_logprobs',
  'logit_bias',
  'user',
  'stream_options',
  'echo',
  'suffix',
  'best_of',
  'presence_penalty',
  'frequency_penalty',
  'input',
  'tokens',
  'response_format',
  'tools',
  'priority',
  'min_p',
  'top_k',
  'repetition_penalty',
  'ignore_eos',
  'include_stop_str_in_output',
  'chat_template',
  'add_special_tokens',
];
const BROKEN_BODIES = ['', '{', '[', 'null', '"x"', '1', '{"a":', '\u0000', '{"model":"tiny",}', '{"prompt":"\ud800"}', '[]'];

function pick<T>(r: Xoshiro128, xs: readonly T[]): T {
  return xs[Math.floor(r.next() * xs.length)]!;
}

function word(r: Xoshiro128, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(r.next() * 26));
  return s;
}

/** GET for the routes that only read, POST for the rest. */
function ownMethod(path: string): string {
  return path === '/' || path.includes('models') || ['/health', '/ready', '/version', '/metrics'].includes(path) ? 'GET' : 'POST';
}

/** A body near `limitBytes` (below or above it): the largest allocations a client can cause. */
function bigBody(r: Xoshiro128, path: string, limitBytes: number, chat: boolean): string {
  const target = Math.floor(limitBytes * (0.5 + r.next() * 0.7)); // half the limit to 20% over it
  const kind = r.next();
  if (chat && path.includes('chat') && kind < 0.5) {
    const each = 64 + Math.floor(r.next() * 4096);
    const n = Math.max(1, Math.floor(target / (each + 40)));
    const messages = Array.from({ length: n }, (_, i) => ({
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: word(r, 8).repeat(Math.ceil(each / 8)),
    }));
    return JSON.stringify({ model: 'tiny', messages, max_tokens: 1 });
  }
  if (kind < 0.8) return JSON.stringify({ model: 'tiny', prompt: `${word(r, 7)} `.repeat(Math.ceil(target / 8)), max_tokens: 1 });
  // Deep or wide JSON that is not what the route wants.
  return JSON.stringify({
    model: 'tiny',
    prompt: 'hi',
    [`x_${word(r, 6)}`]: Array.from({ length: Math.floor(target / 12) }, (_, i) => ({ i })),
  });
}

/** A small body for `path`: broken JSON (1 in 10, one just over the limit among them), or the route's fields with odd values. */
function smallBody(r: Xoshiro128, path: string, limitBytes: number): string {
  if (r.next() < 0.1) return pick(r, [...BROKEN_BODIES, 'x'.repeat(limitBytes + 6 * 1024)]);
  const base: Record<string, unknown> =
    path.includes('chat') || path.includes('responses')
      ? { model: 'tiny', messages: [{ role: 'user', content: word(r, 5) }], input: 'hi' }
      : path.includes('tokenize')
        ? { model: 'tiny', prompt: word(r, 12), tokens: [1, 2] }
        : { model: 'tiny', prompt: word(r, 12), input: 'hi' };
  base.max_tokens = 1 + Math.floor(r.next() * 3);
  base.max_output_tokens = 16;
  const edits = Math.floor(r.next() * 4);
  for (let i = 0; i < edits; i++) {
    // An invented field name now and then: the server must trace it without keeping every name.
    const field = r.next() < 0.1 ? `unknown_${word(r, 6)}` : pick(r, FIELDS);
    base[field] = pick(r, ODD_VALUES);
  }
  const extra = r.next();
  if (extra < 0.1) base.stop = Array.from({ length: 1 + Math.floor(r.next() * 24) }, () => word(r, 1 + Math.floor(r.next() * 300)));
  else if (extra < 0.15)
    base.logit_bias = Object.fromEntries(Array.from({ length: 1 + Math.floor(r.next() * 600) }, (_, i) => [String(i), -1]));
  else if (extra < 0.2) base.user = word(r, 1 + Math.floor(r.next() * 2000));
  else if (extra < 0.25)
    base.model = word(r, 1 + Math.floor(r.next() * 300)); // an unknown model: never a label
  else if (extra < 0.3) base.stream = true;
  else if (extra < 0.35) {
    base.logprobs = path.includes('chat') ? true : 5;
    base.top_logprobs = 5;
  }
  if (typeof base.n === 'number' && base.n > 4) base.n = 2; // keep generation short
  if (typeof base.max_tokens === 'number' && base.max_tokens > 4) base.max_tokens = 2;
  return JSON.stringify(base);
}

function headersFor(r: Xoshiro128, jsonShare: number): Record<string, string> {
  const headers: Record<string, string> = {};
  const ct = r.next() < jsonShare ? 'application/json' : pick(r, CONTENT_TYPES);
  if (ct !== '') headers['content-type'] = ct;
  if (r.next() < 0.3)
    headers.authorization =
      r.next() < 0.5
        ? `Bearer ${word(r, 8 + Math.floor(r.next() * 40))}` // invented keys
        : pick(r, ['Bearer', 'Bearer ', 'Basic abc', 'bearer x', `Bearer ${'k'.repeat(500)}`]);
  if (r.next() < 0.2)
    headers['x-request-id'] = r.next() < 0.5 ? word(r, 1 + Math.floor(r.next() * 300)) : pick(r, ['', 'x'.repeat(300), 'a b', '\u00e9']);
  if (r.next() < 0.1) headers.accept = pick(r, ['text/event-stream', 'application/xml', '*/*', '']);
  if (r.next() < 0.05) headers['content-encoding'] = pick(r, ['gzip', 'br', 'bogus']);
  return headers;
}

/** One seeded request. `limitBytes` is the server's body limit (the big bodies straddle it). */
export function fuzzRequest(r: Xoshiro128, limitBytes: number, mix: FuzzMix = {}): FuzzRequest {
  const path = r.next() < (mix.oddPathShare ?? 0.15) ? pick(r, ODD_PATHS) : pick(r, ROUTES);
  const method = r.next() < (mix.ownMethodShare ?? 0.85) ? ownMethod(path) : pick(r, METHODS);
  const headers = headersFor(r, mix.jsonShare ?? 0.9);
  // Now and then a body where none belongs (GET, HEAD) and none where one does.
  const withBody = method !== 'GET' && method !== 'HEAD' ? r.next() < 0.9 : r.next() < 0.1;
  let body: string | null = null;
  if (withBody)
    body = r.next() < (mix.bigShare ?? 0.08) ? bigBody(r, path, limitBytes, mix.bigChat ?? true) : smallBody(r, path, limitBytes);
  const abortAfterMs = r.next() < (mix.abortShare ?? 0.05) ? Math.floor(r.next() * 50) : null;
  return { method, path, headers, body, abortAfterMs };
}
