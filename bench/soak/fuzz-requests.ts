// Seeded bad and odd HTTP requests for load-and-memory fuzzing (bench/soak/fuzz-memory.ts and the
// CI-sized memory test): broken JSON, wrong types, bodies at and over the size limit, many messages,
// long stop lists, unknown fields, odd paths and headers, invented keys and field names (the values
// that must never become unbounded metric labels or map keys), mixed with small valid generations.
// Pure: the same seed gives the same requests. Never asserts; the callers judge the answers.
import type { Xoshiro128 } from '../../src/model/prng.js';

export interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | null;
  /** Hang up this many ms after sending (a client that gives up); null: read the whole answer. */
  readonly abortAfterMs: number | null;
}

const ROUTES = [
  '/v1/completions',
  '/v1/chat/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/tokenize',
  '/detokenize',
  '/v1/models',
  '/health',
  '/metrics',
  '/version',
];
const ODD_PATHS = [
  '/%ff',
  '/v1/%',
  '/v1/models/%ff%fe',
  '/%2e%2e/etc/passwd',
  '//',
  '/v1//completions',
  '/v1/models/',
  '/favicon.ico',
  '/v2/x',
];

function pick<T>(r: Xoshiro128, xs: readonly T[]): T {
  return xs[Math.floor(r.next() * xs.length)]!;
}

function word(r: Xoshiro128, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(r.next() * 26));
  return s;
}

function oddValue(r: Xoshiro128): unknown {
  return pick(r, [
    null,
    true,
    -1,
    0,
    1e308,
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
    3,
    100000,
    ['a', 'b'],
  ]);
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

function smallBody(r: Xoshiro128, path: string): string {
  const kind = r.next();
  if (kind < 0.1) return pick(r, ['', '{', '[', 'null', '"x"', '1', '{"a":', '\u0000', '{"model":"tiny",}', '{"prompt":"\ud800"}', '[]']);
  const base: Record<string, unknown> =
    path.includes('chat') || path.includes('responses')
      ? { model: 'tiny', messages: [{ role: 'user', content: word(r, 5) }], input: 'hi' }
      : path.includes('tokenize')
        ? { model: 'tiny', prompt: word(r, 12), tokens: [1, 2] }
        : { model: 'tiny', prompt: word(r, 12), input: 'hi' };
  base.max_tokens = 1 + Math.floor(r.next() * 3);
  base.max_output_tokens = 16;
  const fields = [
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
    'best_of',
    'presence_penalty',
    'input',
    'tokens',
    'response_format',
    'tools',
    'priority',
    'min_p',
    'top_k',
    'chat_template',
    'add_special_tokens',
    `unknown_${word(r, 6)}`,
  ];
  const edits = Math.floor(r.next() * 4);
  for (let i = 0; i < edits; i++) base[pick(r, fields)] = oddValue(r);
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

/** Share of bodies near the size limit (default 0.08), and whether big chat bodies are among them. */
export interface FuzzMix {
  readonly bigShare?: number;
  readonly bigChat?: boolean;
}

/** One seeded request. `limitBytes` is the server's body limit (the big bodies straddle it). */
export function fuzzRequest(r: Xoshiro128, limitBytes: number, mix: FuzzMix = {}): FuzzRequest {
  const path = r.next() < 0.15 ? pick(r, ODD_PATHS) : pick(r, ROUTES);
  const getty = path.includes('models') || ['/health', '/metrics', '/version'].includes(path);
  const method = r.next() < 0.85 ? (getty ? 'GET' : 'POST') : pick(r, ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH']);
  const headers: Record<string, string> = {};
  headers['content-type'] =
    r.next() < 0.9 ? 'application/json' : pick(r, ['text/plain', 'application/x-www-form-urlencoded', '', 'application/jsonx']);
  if (headers['content-type'] === '') delete headers['content-type'];
  if (r.next() < 0.3) headers.authorization = `Bearer ${word(r, 8 + Math.floor(r.next() * 40))}`; // invented keys
  if (r.next() < 0.3) headers['x-request-id'] = r.next() < 0.5 ? word(r, 1 + Math.floor(r.next() * 300)) : 'a b';
  let body: string | null = null;
  if (method !== 'GET' && method !== 'HEAD')
    body = r.next() < (mix.bigShare ?? 0.08) ? bigBody(r, path, limitBytes, mix.bigChat ?? true) : smallBody(r, path);
  const abortAfterMs = r.next() < 0.05 ? Math.floor(r.next() * 50) : null;
  return { method, path, headers, body, abortAfterMs };
}
