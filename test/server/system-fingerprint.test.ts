// system_fingerprint on the real stack: every chat/completions body and stream chunk (usage chunk too)
// carries fp_ + 12 hex digits, the same as /version, derived from the environment fingerprint that
// doctor computes (fingerprintId over build, CPU/GPU, weights, tokenizer, configs) and the serving
// setup; other weights give another fingerprint.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { environmentFingerprint, systemFingerprintOf } from '../../src/metrics/fingerprint.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';

const dir = mkdtempSync(join(tmpdir(), 'tm-sysfp-'));
const device = cpuAddonAvailable().available ? 'cpu' : 'reference';
const config = { ...MODEL_PRESETS['tiny-llama']!.config, num_hidden_layers: 1 };
let stack: ModelStack;
let server: TokenmillServer;
let client: OpenAI;
let url = '';

before(async () => {
  writeRandomModel(join(dir, 'a'), config, { seed: 1 });
  stack = await openModelStack({ dir: join(dir, 'a'), modelId: 'tiny', device, kvCacheBytes: 2 << 20 });
  server = await createServer({ engine: stack.engine, frontend: stack.frontend, systemFingerprint: stack.systemFingerprint });
  url = (await server.listen({ port: 0 })).url;
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
});
after(async () => {
  await server?.close();
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('every chat/completions body and chunk carries the system_fingerprint; /version too', async () => {
  const fp = stack.systemFingerprint;
  assert.match(fp, /^fp_[0-9a-f]{12}$/);
  const msgs = [{ role: 'user' as const, content: 'hi' }];
  const chat = await client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 2 });
  assert.equal(chat.system_fingerprint, fp);
  const comp = await client.completions.create({ model: 'tiny', prompt: 'hi', max_tokens: 2 });
  assert.equal(comp.system_fingerprint, fp);
  const seen: (string | null | undefined)[] = [];
  for await (const c of await client.chat.completions.create({
    model: 'tiny',
    messages: msgs,
    max_tokens: 2,
    stream: true,
    stream_options: { include_usage: true },
  }))
    seen.push(c.system_fingerprint);
  for await (const c of await client.completions.create({
    model: 'tiny',
    prompt: 'hi',
    max_tokens: 2,
    stream: true,
    stream_options: { include_usage: true },
  }))
    seen.push(c.system_fingerprint);
  assert.ok(seen.length >= 4, String(seen.length)); // each stream: at least a finishing chunk and the usage chunk
  assert.deepEqual(new Set(seen), new Set([fp]));
  const version = (await (await fetch(`${url}/version`)).json()) as { system_fingerprint: string };
  assert.equal(version.system_fingerprint, fp);
});

test("derived from doctor's environment fingerprint and the serving setup; other weights differ", async () => {
  const env = await environmentFingerprint({ modelDir: join(dir, 'a') });
  assert.equal(stack.fingerprintId, env.fingerprintId);
  const setup = { backend: device, quantize: null, kvCacheDType: 'auto' };
  assert.equal(stack.systemFingerprint, systemFingerprintOf(env.fingerprintId, setup));
  assert.notEqual(systemFingerprintOf(env.fingerprintId, { ...setup, quantize: 'int8' }), stack.systemFingerprint);
  writeRandomModel(join(dir, 'b'), config, { seed: 2 });
  const other = await environmentFingerprint({ modelDir: join(dir, 'b') });
  assert.notEqual(systemFingerprintOf(other.fingerprintId, setup), stack.systemFingerprint);
});
