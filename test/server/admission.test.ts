// Admission by default on the real engine (tiny model): offered far more than it can serve, the
// server answers the excess at once with 503 server_overloaded + Retry-After (the OpenAI envelope),
// every admitted request completes, and the running/waiting gauges and the KV pool return to idle.
// First the count bound (the rate is not measured yet), then the wait bound from the measured rate.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startRealLive, type RealLive } from './helpers.js';
import { TINY_MODEL_ID } from './real-engine.js';

let live: RealLive;
before(async () => {
  // Two sequences per step, the default count bound (64 waiting), a 0.25 s wait bound: short, so that
  // a burst of 50 exceeds it even at the 71 requests/s a quiet 2-core CI machine finishes.
  live = await startRealLive({ engine: { maxNumSeqs: 2, maxQueueWaitSeconds: 0.25 } });
});
after(async () => live?.close());

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { error?: { code: string; type: string; message: string }; choices?: { finish_reason: string }[] };
}

async function post(maxTokens: number): Promise<Answer> {
  const res = await fetch(`${live.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: TINY_MODEL_ID, prompt: 'a', max_tokens: maxTokens, ignore_eos: true }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Answer['body'] };
}

function checkShed(answers: Answer[]): { ok: Answer[]; shed: Answer[] } {
  const ok = answers.filter((a) => a.status === 200);
  const shed = answers.filter((a) => a.status !== 200);
  for (const a of shed) {
    assert.equal(a.status, 503, JSON.stringify(a.body));
    assert.equal(a.body.error?.code, 'server_overloaded');
    assert.equal(a.body.error?.type, 'server_error');
    assert.ok(Number(a.retryAfter) >= 1 && Number(a.retryAfter) <= 60, `retry-after ${a.retryAfter}`);
  }
  for (const a of ok) assert.equal(a.body.choices?.[0]?.finish_reason, 'length');
  return { ok, shed };
}

async function assertIdle(): Promise<void> {
  for (let i = 0; i < 200 && live.engine.stats().numRunning + live.engine.stats().numWaiting > 0; i++)
    await new Promise((r) => setTimeout(r, 10));
  const s = live.engine.stats();
  assert.equal(s.numRunning, 0);
  assert.equal(s.numWaiting, 0);
  assert.equal(s.numFreeBlocks, s.numTotalBlocks);
  const text = await (await fetch(`${live.url}/metrics`)).text();
  assert.match(text, /^tokenmill_num_requests_running\{[^}]*\} 0$/m);
  assert.match(text, /^tokenmill_num_requests_waiting\{[^}]*\} 0$/m);
}

test('150 at once against 2 slots and 64 waiting places: the excess gets 503 + Retry-After, the admitted complete', async () => {
  // 250 tokens each: few admitted requests can finish while the burst is still arriving.
  const answers = await Promise.all(Array.from({ length: 150 }, () => post(250)));
  const { ok, shed } = checkShed(answers);
  assert.ok(ok.length >= 2, `${ok.length} admitted`);
  assert.ok(shed.length >= 50, `${shed.length} shed`);
  // Each refusal names the bound that refused it: the 64 waiting places, or (once the rate is
  // measured mid-burst) the 0.25 s wait.
  for (const a of shed)
    assert.match(a.body.error!.message, /64 requests are waiting \(the bound is 64\)|requests\/s \(the bound is 0\.25 s\)/);
  await assertIdle();
});

test('with the finish rate measured, the wait bound sheds a burst the count bound would admit', async () => {
  const inner = live.engine.inner;
  // The rate is known after 2 s of busy engine time: a bound on wall time, not on rounds, since a
  // fast machine needs more rounds of these short requests to get there.
  const deadline = Date.now() + 60_000;
  while (inner.admission.finishRate() === null && Date.now() < deadline) await Promise.all([post(100), post(100)]);
  const rate = inner.admission.finishRate();
  assert.ok(rate !== null && rate > 0);
  const answers = await Promise.all(Array.from({ length: 50 }, () => post(100)));
  const { ok, shed } = checkShed(answers);
  // 50 < 64 waiting places: every refusal here comes from the estimated wait (0.25 s at the measured rate).
  assert.ok(shed.length > 0, `none shed at ${rate.toFixed(2)} requests/s`);
  assert.ok(
    shed.every((a) => /requests\/s \(the bound is 0\.25 s\)/.test(a.body.error!.message)),
    shed[0]?.body.error?.message,
  );
  assert.ok(ok.length >= 2);
  await assertIdle();
});
