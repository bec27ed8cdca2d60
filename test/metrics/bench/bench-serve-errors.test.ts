// `bench serve` says why it cannot start: no server at --url (connection refused) is server_unreachable,
// a refused key (401 from a real tokenmill server with API keys) is invalid_api_key, an empty model
// list is invalid_argument. Each names the URL and what to do.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { benchServe, type ServeBenchCliOptions } from '../../../src/cli/bench-serve.js';
import { ApiKeyStore } from '../../../src/server/auth.js';
import { TokenmillError } from '../../../src/util/errors.js';
import { startRealLive } from '../../server/helpers.js';
import { startFakeServer } from './fake-openai-server.js';

const base = (url: string): ServeBenchCliOptions => ({
  url,
  concurrency: '1',
  numRequests: 1,
  in: 4,
  out: 2,
  vocabSize: 100,
  ignoreEos: true,
  timeoutS: 10,
  seed: 1,
  deviceName: 'test',
});

/** A loopback port nothing listens on: bind port 0, note it, close it. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function rejectsWith(code: string, re: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof TokenmillError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  };
}

test('bench serve: no server at --url is server_unreachable (connection refused), not "listed no model"', async () => {
  const url = `http://127.0.0.1:${await deadPort()}`;
  await assert.rejects(benchServe(base(`${url}/v1`)), rejectsWith('server_unreachable', /cannot reach .*connection refused/));
  // Also with --model given: the bench stops before sending load.
  await assert.rejects(benchServe({ ...base(url), model: 'm' }), rejectsWith('server_unreachable', /connection refused/));
});

test('bench serve: a wrong key against a tokenmill server with keys is invalid_api_key (401)', async () => {
  const live = await startRealLive({ server: { apiKeys: new ApiKeyStore(['right-key-1234']) } });
  try {
    process.env.TM_BENCH_WRONG_KEY = 'wrong-key-9999';
    await assert.rejects(
      benchServe({ ...base(`${live.url}/v1`), apiKeyEnv: 'TM_BENCH_WRONG_KEY' }),
      rejectsWith('invalid_api_key', /answered 401: the key in \$TM_BENCH_WRONG_KEY was refused/),
    );
    await assert.rejects(benchServe(base(live.url)), rejectsWith('invalid_api_key', /401: no API key was sent: pass --api-key-env/));
  } finally {
    delete process.env.TM_BENCH_WRONG_KEY;
    await live.close();
  }
});

test('bench serve: a reachable server with an empty model list still says "listed no model"', async () => {
  const fake = await startFakeServer({ models: [], version: null });
  try {
    await assert.rejects(benchServe(base(fake.url)), rejectsWith('invalid_argument', /listed no model; pass --model NAME/));
  } finally {
    await fake.close();
  }
});
