// Seeded HTTP fuzz against a live server on the real Engine (a tiny random model), from the generator
// the memory fuzz shares (bench/soak/fuzz-requests.ts, with its odd paths, methods and content types
// at their highest shares): odd paths (malformed percent-escapes, dot segments, long and unicode
// paths), every method, content types, bodies (broken JSON, wrong types, huge numbers, unknown
// fields) and headers. Every 4xx must carry the OpenAI error envelope {error: {message, type, param,
// code}} as JSON, and nothing may answer 5xx.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ENVELOPE_MIX, fuzzRequest, type FuzzRequest } from '../../bench/soak/fuzz-requests.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { Xoshiro128 } from '../../src/model/prng.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';

const SEED = Number(process.env.TOKENMILL_FUZZ_SEED ?? 20261201);
const COUNT = Number(process.env.TOKENMILL_FUZZ_COUNT ?? 400);
const BODY_LIMIT = 64 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'tm-fuzz-'));
let stack: ModelStack;
let server: TokenmillServer;
let port = 0;

before(async () => {
  writeRandomModel(dir, { ...MODEL_PRESETS['tiny-llama']!.config, num_hidden_layers: 1 }, { seed: 9 });
  stack = await openModelStack({
    dir,
    modelId: 'tiny',
    device: cpuAddonAvailable().available ? 'cpu' : 'reference',
    kvCacheBytes: 2 << 20,
  });
  server = await createServer({ engine: stack.engine, frontend: stack.frontend, bodyLimitBytes: BODY_LIMIT });
  port = (await server.listen({ port: 0 })).port;
});
after(async () => {
  await server?.close();
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What send() and violation() read of a request (the known cases below are written out by hand). */
type Sent = Pick<FuzzRequest, 'method' | 'path' | 'headers' | 'body'>;

function send(f: Sent): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...f.headers };
    const payload = f.body === null ? null : Buffer.from(f.body, 'utf8');
    if (payload !== null) headers['content-length'] = payload.byteLength;
    // agent: false: a fresh connection each time (a pooled socket the server closed would read as a reset).
    const req = request({ host: '127.0.0.1', port, method: f.method, path: f.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: -1, contentType: '', text: `${e.code ?? ''} ${e.message}` }));
    req.end(payload ?? undefined);
  });
}

/** Why the answer breaks the contract, or null when it keeps it. */
export function violation(f: Sent, status: number, contentType: string, text: string): string | null {
  if (status < 0) return `no answer: ${text}`;
  if (status >= 500) return `${status} (no 5xx allowed)`;
  if (status < 400 || f.method === 'HEAD') return null;
  if (!contentType.startsWith('application/json')) return `${status} with content-type '${contentType}'`;
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return `${status} with a non-JSON body ${JSON.stringify(text.slice(0, 80))}`;
  }
  const e = (j as { error?: Record<string, unknown> }).error;
  if (e === undefined || typeof e !== 'object' || e === null) return `${status} without an error object: ${text.slice(0, 120)}`;
  if (typeof e.message !== 'string' || e.message === '' || typeof e.type !== 'string')
    return `${status} error lacks message/type: ${text.slice(0, 120)}`;
  if (!('param' in e) || !(e.param === null || typeof e.param === 'string')) return `${status} error.param missing: ${text.slice(0, 120)}`;
  if (!('code' in e) || !(e.code === null || typeof e.code === 'string')) return `${status} error.code missing: ${text.slice(0, 120)}`;
  return null;
}

test(`fuzz: ${COUNT} seeded requests (seed ${SEED}); every 4xx is the OpenAI envelope, no 5xx`, async () => {
  const r = new Xoshiro128(SEED);
  const cases = Array.from({ length: COUNT }, () => fuzzRequest(r, BODY_LIMIT, ENVELOPE_MIX));
  const problems: string[] = [];
  const statuses = new Map<number, number>();
  // A few at a time: concurrency like a real client mix, without flooding the 2-core CI machine.
  for (let i = 0; i < cases.length; i += 8) {
    const batch = cases.slice(i, i + 8);
    const answers = await Promise.all(batch.map(send));
    answers.forEach((a, k) => {
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      const why = violation(batch[k]!, a.status, a.contentType, a.text);
      if (why !== null)
        problems.push(
          `${batch[k]!.method} ${batch[k]!.path.slice(0, 60)} [${batch[k]!.headers['content-type'] ?? '-'}] body ` +
            `${batch[k]!.body?.length ?? 'none'} ${JSON.stringify(batch[k]!.headers)}: ${why}`,
        );
    });
  }
  assert.deepEqual(problems, [], `statuses ${JSON.stringify([...statuses])}`);
  // The mix reaches the routes: successes and several kinds of 4xx.
  assert.ok((statuses.get(200) ?? 0) > 20, JSON.stringify([...statuses]));
  assert.ok(
    [400, 404, 415].every((s) => (statuses.get(s) ?? 0) > 0),
    JSON.stringify([...statuses]),
  );
  assert.equal(server.state, 'serving');
});

test('known bad answers, one by one: malformed escapes, unknown routes and methods', async () => {
  const cases: Sent[] = [
    { method: 'GET', path: '/%ff', headers: {}, body: null },
    { method: 'GET', path: '/%', headers: {}, body: null },
    { method: 'POST', path: '/v1/%', headers: { 'content-type': 'application/json' }, body: '{}' },
    { method: 'DELETE', path: '/v1/models', headers: {}, body: null },
    { method: 'PUT', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: '{}' },
    { method: 'OPTIONS', path: '/v1/chat/completions', headers: {}, body: null },
    { method: 'TRACE', path: '/', headers: {}, body: null },
    { method: 'PROPFIND', path: '/v1/models', headers: {}, body: null },
    { method: 'GET', path: '/\u00e9t\u00e9', headers: {}, body: null }, // raw non-ASCII: Node's parser rejects it
    { method: 'POST', path: '/v1/completions', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(70 * 1024) },
  ];
  for (const f of cases) {
    const a = await send(f);
    assert.ok(a.status >= 400 && a.status < 500, `${f.method} ${f.path}: ${a.status}`);
    assert.equal(violation(f, a.status, a.contentType, a.text), null, `${f.method} ${f.path}`);
  }
});
