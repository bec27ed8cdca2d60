// Process lifecycle on a spawned server: SIGTERM drains (in-flight streams finish, new requests get
// 503 server_draining, /ready 503) and exits 0; a drain timeout ends the stragglers with an error
// chunk; a second signal exits at once; an engine fault exits non-zero.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { openSse, rawSse } from './helpers.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'fake-serve.ts');

async function spawnServer(env: Record<string, string>): Promise<{ child: ChildProcess; url: string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { env: { ...process.env, TOKENMILL_LOG_LEVEL: 'error', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  let buf = '';
  for await (const chunk of child.stdout!) {
    buf += String(chunk);
    if (buf.includes('\n')) break;
  }
  return { child, url: (JSON.parse(buf.split('\n')[0]!) as { url: string }).url, exit };
}

const streamBody = (maxTokens: number) => ({ prompt: 'a', max_tokens: maxTokens, temperature: 0, stream: true });

describe('lifecycle (spawned server)', () => {
  it('SIGTERM: finishes in-flight streams, refuses new work, /ready 503, exits 0', async () => {
    const { child, url, exit } = await spawnServer({ FAKE_STEP_MS: '20', DRAIN_TIMEOUT_MS: '5000' });
    const inflight = await openSse(`${url}/v1/completions`, streamBody(25));
    await inflight.firstEvent;
    child.kill('SIGTERM');
    await sleep(50);
    const ready = await fetch(`${url}/ready`);
    assert.equal(ready.status, 503);
    const fresh = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'a' }) });
    assert.equal(fresh.status, 503);
    assert.ok(fresh.headers.get('retry-after'));
    assert.equal(((await fresh.json()) as { error: { code: string } }).error.code, 'server_draining');
    const events = await inflight.done;
    assert.equal(events.at(-1), '[DONE]');
    const text = events.slice(0, -1).map((e) => (JSON.parse(e) as { choices: { text: string }[] }).choices[0]!.text).join('');
    assert.equal(text.length, 25);
    assert.equal(await exit, 0);
  });

  it('drain timeout: a straggler gets an error chunk then [DONE]; a second signal exits at once', async () => {
    const { child, url, exit } = await spawnServer({ FAKE_STEP_MS: '20', DRAIN_TIMEOUT_MS: '200' });
    const r1 = await openSse(`${url}/v1/completions`, streamBody(200));
    await r1.firstEvent;
    child.kill('SIGTERM');
    const events = await r1.done;
    assert.equal(events.at(-1), '[DONE]');
    assert.equal((JSON.parse(events.at(-2)!) as { error: { code: string } }).error.code, 'server_draining');
    assert.equal(await exit, 0);

    const second = await spawnServer({ FAKE_STEP_MS: '20', DRAIN_TIMEOUT_MS: '60000' });
    const pending = await openSse(`${second.url}/v1/completions`, streamBody(200));
    await pending.firstEvent;
    const pendingDone = pending.done.catch(() => null); // the connection dies with the process
    second.child.kill('SIGTERM');
    await sleep(50);
    second.child.kill('SIGTERM');
    assert.equal(await second.exit, 143);
    await pendingDone;
  });

  it('engine fault: the process exits non-zero', async () => {
    const { url, exit } = await spawnServer({ FAKE_STEP_MS: '5', FAKE_FAULT_AFTER: '5' });
    const r = await rawSse(`${url}/v1/completions`, streamBody(50));
    assert.equal((JSON.parse(r.events.at(-2)!) as { error: { code: string } }).error.code, 'cuda_error');
    assert.equal(await exit, 1);
  });
});
