// `tokenmill serve` as a process: the demo model (what `npm start` runs on a fresh machine, no
// network), a hub model fetched from a local hub server, API keys from the environment, keys on
// argv refused, and SIGTERM exiting 0.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import OpenAI from 'openai';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tokenmill.js');
const KEY = 'sk-e2e-cli-key-9876';

async function startServe(
  args: string[],
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string; out: string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    env: { ...process.env, TOKENMILL_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    if (/listening on (\S+) /.test(out)) break;
  }
  const m = /listening on (\S+) /.exec(out);
  if (!m) throw new Error(`serve did not start: ${out}\n${err}`);
  return { child, url: m[1]!, out, exit };
}

describe('tokenmill serve (process)', () => {
  const cache = mkdtempSync(join(tmpdir(), 'tm-cli-cache-'));
  after(() => rmSync(cache, { recursive: true, force: true }));

  it('serves the generated demo model with keys from TOKENMILL_API_KEYS; SIGTERM exits 0', async () => {
    const s = await startServe(['--usd-per-hour', '3.6', '--chat-template', 'plain'], { TOKENMILL_CACHE: cache, TOKENMILL_API_KEYS: KEY });
    try {
      assert.match(s.out, /tokenmill-demo-tiny-random/);
      assert.match(s.out, /price: \$3\.6\/h, from --usd-per-hour/);
      assert.match(s.out, /system_fingerprint: fp_[0-9a-f]{12} /);
      assert.match(s.out, /chat template: builtin:plain \(--chat-template\)/);
      assert.ok(existsSync(join(cache, 'demo', 'tokenmill-demo-tiny', 'model.safetensors')));
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: KEY, maxRetries: 0 });
      const models = await client.models.list();
      assert.equal(models.data[0]!.id, 'tokenmill-demo-tiny-random');
      const r = await client.chat.completions.create({
        model: 'tokenmill-demo-tiny',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 4,
        temperature: 0,
      });
      assert.equal(r.usage!.completion_tokens <= 4, true);
      assert.ok((r.usage as unknown as { cost_usd: number }).cost_usd > 0);
      assert.equal((await fetch(`${s.url}/v1/models`)).status, 401);
      assert.equal((await fetch(`${s.url}/health`)).status, 200);
    } finally {
      s.child.kill('SIGTERM');
    }
    assert.equal(await s.exit, 0);
  });

  it('downloads --model org/name from TOKENMILL_HUB_URL and serves it', async () => {
    const src = mkdtempSync(join(tmpdir(), 'tm-hub-src-'));
    writeRandomModel(src, MODEL_PRESETS['tiny-qwen2']!.config, { seed: 3 });
    const hub: Server = createServer((req, res) => {
      const m = /^\/acme\/tiny-qwen\/resolve\/main\/([\w.-]+)$/.exec(req.url ?? '');
      const file = m ? join(src, m[1]!) : null;
      if (!file || !existsSync(file)) return void res.writeHead(404).end();
      const body = readFileSync(file);
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
    const hubUrl = `http://127.0.0.1:${(hub.address() as { port: number }).port}`;
    try {
      const s = await startServe(['--model', 'acme/tiny-qwen', '--kv-cache-memory', '8MiB'], {
        TOKENMILL_CACHE: cache,
        TOKENMILL_HUB_URL: hubUrl,
        TOKENMILL_API_KEYS: '',
      });
      try {
        const dir = join(cache, 'hub', 'acme', 'tiny-qwen');
        assert.deepEqual(
          readdirSync(dir).filter((f) => f.endsWith('.part')),
          [],
        );
        const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'anything', maxRetries: 0 });
        const r = await client.completions.create({ model: 'acme/tiny-qwen', prompt: 'Once upon', max_tokens: 3, temperature: 0 });
        assert.equal(r.model, 'acme/tiny-qwen');
        assert.ok(r.usage!.completion_tokens >= 1);
        // No --usd-per-hour: the device's assumed price, said at start-up and in /version; cost is not $0.
        assert.match(s.out, /price: \$[\d.]+\/h, ASSUMED \(.+\); pass --usd-per-hour/);
        assert.ok((r.usage as unknown as { cost_usd: number }).cost_usd > 0);
        const v = (await (await fetch(`${s.url}/version`)).json()) as { usd_per_hour: number; usd_per_hour_source: string };
        assert.equal(v.usd_per_hour_source, 'assumed');
        assert.ok(v.usd_per_hour > 0);
      } finally {
        s.child.kill('SIGTERM');
      }
      assert.equal(await s.exit, 0);
    } finally {
      hub.close();
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('refuses an API key on the command line', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--api-key', 'sk-secret-on-argv'], {
      env: { ...process.env, TOKENMILL_CACHE: cache },
      encoding: 'utf8',
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /never taken from the command line/);
  });
});
