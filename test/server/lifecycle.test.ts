// Process lifecycle on a spawned server over the real engine (tiny model): SIGTERM drains
// (in-flight streams finish, new requests get 503 server_draining, /ready 503) and exits 0; a drain
// timeout ends the stragglers with an error chunk; a second signal exits at once; an engine fault
// (injected in the model's forward pass) exits non-zero.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openSse, rawSse, until } from './helpers.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'tiny-serve.ts');

async function spawnServer(env: Record<string, string>): Promise<{ child: ChildProcess; url: string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, TOKENMILL_LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  let buf = '';
  for await (const chunk of child.stdout!) {
    buf += String(chunk);
    if (buf.includes('\n')) break;
  }
  return { child, url: (JSON.parse(buf.split('\n')[0]!) as { url: string }).url, exit };
}

// Long requests (4000 tokens: seconds on the tiny model) outlast the probes a test makes meanwhile.
const streamBody = (maxTokens: number) => ({
  prompt: 'a',
  max_tokens: maxTokens,
  temperature: 0,
  ignore_eos: true,
  stream: true,
  stream_options: { include_usage: true },
});

/** The server has taken the signal: /ready answers 503 (or the process is already gone). */
const draining = (url: string) => async (): Promise<boolean> =>
  (await fetch(`${url}/ready`).then(
    (r) => r.status,
    () => 503,
  )) === 503;

describe('lifecycle (spawned server, real engine)', () => {
  it('SIGTERM: finishes in-flight streams, refuses new work, /ready 503, exits 0', async () => {
    const { child, url, exit } = await spawnServer({ DRAIN_TIMEOUT_MS: '60000' });
    const inflight = await openSse(`${url}/v1/completions`, streamBody(3000));
    await inflight.firstEvent;
    child.kill('SIGTERM');
    await until(draining(url), '/ready to answer 503');
    const fresh = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a' }),
    });
    assert.equal(fresh.status, 503);
    assert.ok(fresh.headers.get('retry-after'));
    assert.equal(((await fresh.json()) as { error: { code: string } }).error.code, 'server_draining');
    const events = await inflight.done;
    assert.equal(events.at(-1), '[DONE]');
    type Chunk = { choices: { finish_reason: string | null }[]; usage: { completion_tokens: number } | null };
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Chunk);
    assert.equal(chunks.at(-1)!.usage!.completion_tokens, 3000, 'the in-flight request ran to its max_tokens');
    assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, 'length');
    assert.equal(await exit, 0);
  });

  it('drain timeout: a straggler gets an error chunk then [DONE]; a second signal exits at once', async () => {
    const { child, url, exit } = await spawnServer({ DRAIN_TIMEOUT_MS: '200' });
    const r1 = await openSse(`${url}/v1/completions`, streamBody(4000));
    await r1.firstEvent;
    child.kill('SIGTERM');
    const events = await r1.done;
    assert.equal(events.at(-1), '[DONE]');
    assert.equal((JSON.parse(events.at(-2)!) as { error: { code: string } }).error.code, 'server_draining');
    assert.equal(await exit, 0);

    const second = await spawnServer({ DRAIN_TIMEOUT_MS: '60000' });
    const pending = await openSse(`${second.url}/v1/completions`, streamBody(4000));
    await pending.firstEvent;
    const pendingDone = pending.done.catch(() => null); // the connection dies with the process
    second.child.kill('SIGTERM');
    await until(draining(second.url), '/ready to answer 503');
    second.child.kill('SIGTERM');
    assert.equal(await second.exit, 143);
    await pendingDone;
  });

  it('engine fault: the process exits non-zero', async () => {
    // The request's prefill and three decode steps run; the 5th forward pass fails.
    const { url, exit } = await spawnServer({ FAULT_AT_FORWARD: '5' });
    const r = await rawSse(`${url}/v1/completions`, streamBody(50));
    assert.equal((JSON.parse(r.events.at(-2)!) as { error: { code: string } }).error.code, 'cuda_error');
    assert.equal(await exit, 1);
  });
});
