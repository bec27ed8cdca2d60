// Process-level faults on real `tokenmill serve` processes (loopback, tiny random model): SIGTERM
// with 100 streams in flight, SIGKILL and restart (nothing on disk damaged), and clients that never
// read. Each: the server keeps serving or exits cleanly with a logged reason, and /health says so.
// (The fake-engine lifecycle details live in test/server/lifecycle.test.ts.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { readMetrics, startServe, waitIdle, type ServeProcess } from '../../bench/soak/serve-process.js';

const work = mkdtempSync(join(tmpdir(), 'tm-proc-faults-'));
const started: ServeProcess[] = [];
after(async () => {
  for (const s of started) if (s.child.exitCode === null && s.child.signalCode === null) await s.stop('SIGKILL'); // a failed test's server
  rmSync(work, { recursive: true, force: true });
});
const serve = async (...a: Parameters<typeof startServe>): Promise<ServeProcess> => {
  const s = await startServe(...a);
  started.push(s);
  return s;
};
const modelDir = join(work, 'model');
writeRandomModel(modelDir, { ...MODEL_PRESETS['tiny-llama']!.config, max_position_embeddings: 512 }, { seed: 9 });
const BASE = ['--model', modelDir, '--served-model-name', 'm', '--threads', '1', '--usd-per-hour', '1'];

/** A streaming completion that never stops early (ignore_eos) and reports how it ended. */
async function stream(
  url: string,
  maxTokens: number,
  onFirst?: () => void,
): Promise<{ status: number; finish: string | null; errorCode: string | null; done: boolean }> {
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt: 'once upon a time', max_tokens: maxTokens, stream: true, ignore_eos: true, temperature: 0 }),
  });
  if (!r.ok)
    return { status: r.status, finish: null, errorCode: ((await r.json()) as { error: { code: string } }).error.code, done: false };
  let finish: string | null = null;
  let errorCode: string | null = null;
  let done = false;
  let buf = '';
  let first = true;
  for await (const chunk of r.body!) {
    if (first) {
      first = false;
      onFirst?.();
    }
    buf += Buffer.from(chunk).toString();
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const raw = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!raw.startsWith('data: ')) continue; // ': ping' keep-alives
      const ev = raw.slice(6);
      if (ev === '[DONE]') {
        done = true;
        continue;
      }
      const j = JSON.parse(ev) as { choices?: { finish_reason: string | null }[]; error?: { code: string } };
      if (j.error) errorCode = j.error.code;
      for (const c of j.choices ?? []) if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { status: r.status, finish, errorCode, done };
}

test('SIGTERM with 100 streams in flight: new requests 503, every stream ends clearly, exit 0 within the drain bound', {
  timeout: 240_000,
}, async () => {
  const s = await serve([...BASE, '--drain-timeout', '60', '--max-num-seqs', '128']);
  let started = 0;
  let signalled: () => void = () => {};
  const allStarted = new Promise<void>((r) => {
    signalled = r;
  });
  const streams = Array.from({ length: 100 }, () =>
    stream(s.url, 40, () => {
      if (++started === 100) signalled();
    }),
  );
  await allStarted;
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  // Poll (bounded) until the drain is visible, then a new request must be refused with Retry-After.
  let fresh: Response | null = null;
  for (let i = 0; i < 100; i++) {
    fresh = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt: 'a', max_tokens: 1 }),
    }).catch(() => null);
    if (fresh === null || fresh.status === 503) break;
    await fresh.text();
  }
  if (fresh !== null) {
    assert.equal(fresh.status, 503);
    assert.ok(fresh.headers.get('retry-after'));
    assert.equal(((await fresh.json()) as { error: { code: string } }).error.code, 'server_draining');
  }
  const results = await Promise.all(streams);
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.ok(r.done, 'every stream ends with [DONE]');
    // Finished normally (length: ignore_eos) or cut by the drain bound with a server_draining error chunk.
    assert.ok(r.finish === 'length' || r.errorCode === 'server_draining', JSON.stringify(r));
  }
  const e = await s.exit;
  assert.equal(e.code, 0, s.log().slice(-2000));
  assert.ok(Date.now() - t0 < 90_000, 'drained within the bound (60 s) plus slack');
  assert.match(s.log(), /SIGTERM|drain/i);
});

test('SIGKILL mid-load and restart: keys file and model files untouched, the restarted server serves', { timeout: 240_000 }, async () => {
  const keys = join(work, 'keys.txt');
  writeFileSync(keys, 'sk-reliability-key-1\nsk-reliability-key-2\n');
  chmodSync(keys, 0o600);
  const digest = (dir: string): string => {
    const h = createHash('sha256');
    for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(join(dir, f)));
    return h.digest('hex');
  };
  const before = { keys: readFileSync(keys), keysMode: statSync(keys).mode, model: digest(modelDir) };
  const auth = { authorization: 'Bearer sk-reliability-key-2' };
  for (let round = 0; round < 2; round++) {
    const s = await serve([...BASE, '--api-key-file', keys]);
    const load = Array.from({ length: 8 }, () =>
      fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ model: 'm', prompt: 'a b c', max_tokens: 64, stream: true, ignore_eos: true }),
      })
        .then((r) => r.text())
        .catch(() => 'cut'),
    );
    await readMetrics(s.url, auth);
    s.child.kill('SIGKILL');
    assert.equal((await s.exit).signal, 'SIGKILL');
    await Promise.all(load); // cut connections, not hangs
  }
  assert.deepEqual(readFileSync(keys), before.keys);
  assert.equal(statSync(keys).mode, before.keysMode);
  assert.equal(digest(modelDir), before.model);
  const s = await serve([...BASE, '--api-key-file', keys]);
  try {
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    const r = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ model: 'm', prompt: 'a', max_tokens: 4 }),
    });
    assert.equal(r.status, 200);
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});

test('SIGKILL while generating the demo model: the restart regenerates it and leaves no temporary directory', {
  timeout: 240_000,
}, async () => {
  const cache = join(work, 'cache');
  const s1 = await serve([], { env: { TOKENMILL_CACHE: cache } }).catch(() => null);
  // Killed after it is up: the demo directory is complete. Kill a second start while it writes.
  if (s1) {
    s1.child.kill('SIGKILL');
    await s1.exit;
  }
  rmSync(join(cache, 'demo'), { recursive: true, force: true });
  const { spawn } = await import('node:child_process');
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'tokenmill.js');
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], {
    env: { ...process.env, TOKENMILL_CACHE: cache },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((r) => child.once('exit', r));
  // Bounded poll for the temporary directory to appear, then kill mid-write.
  const demo = join(cache, 'demo');
  for (let i = 0; i < 600 && !(existsSync(demo) && readdirSync(demo).some((f) => f.includes('.tmp-'))); i++)
    await new Promise((r) => setTimeout(r, 25));
  child.kill('SIGKILL');
  await exited;
  const s = await serve([], { env: { TOKENMILL_CACHE: cache } });
  try {
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    assert.deepEqual(
      readdirSync(demo).filter((f) => f.includes('.tmp-')),
      [],
      'stale temporary directories are removed',
    );
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});

test('clients that never read: others keep being served, KV blocks come back when they go', { timeout: 240_000 }, async () => {
  const s = await serve([...BASE, '--max-num-seqs', '32']);
  const sockets: Socket[] = [];
  try {
    const body = JSON.stringify({ model: 'm', prompt: 'once upon a time', max_tokens: 400, stream: true, ignore_eos: true, n: 4 });
    const { port } = new URL(s.url);
    for (let i = 0; i < 16; i++) {
      const sock = connect({ host: '127.0.0.1', port: Number(port) });
      sock.pause(); // never read: the server's writes back up into its buffers
      sock.write(
        'POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' +
          `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      sockets.push(sock);
    }
    const m0 = await readMetrics(s.url);
    for (let i = 0; i < 5; i++) {
      const r = await stream(s.url, 16);
      assert.equal(r.status, 200);
      assert.equal(r.finish, 'length');
    }
    const m1 = await readMetrics(s.url);
    assert.ok(
      (m1.get('process_resident_memory_bytes') ?? 0) < (m0.get('process_resident_memory_bytes') ?? 0) + 256 * 2 ** 20,
      'memory stays bounded',
    );
  } finally {
    for (const sock of sockets) sock.destroy();
  }
  const idle = await waitIdle(s.url);
  assert.equal(idle.get('tokenmill_kv_cache_free_blocks'), idle.get('tokenmill_kv_cache_total_blocks'));
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
  assert.equal((await s.stop()).code, 0);
});
