// Cost properties under a random schedule (fast-check), on the real AsyncEngine + server over the
// tiny model: groups of concurrent requests (streamed or not, three API keys, prompts long enough to
// be prefilled in chunks of a 32-token step budget) separated by idle gaps. The engine and the
// ledger share a simulated clock: each engine clock read advances it 1 ms, an idle gap by its length.
// Checked: per-request usage.cost_usd, the per-key totals and the busy total agree; the all-in total
// is price x uptime and holds every idle gap; every request pays at least its processed tokens'
// share of each step's token budget (so a prefill chunk is never left to the decodes beside it).

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { ApiKeyStore } from '../../src/server/auth.js';
import { disposeTinyModel } from '../engine/tiny-model.js';
import { startTinyServer } from './tiny-server.js';

after(disposeTinyModel);

const KEYS = ['sk-cost-key-aaaa', 'sk-cost-key-bbbb', 'sk-cost-key-cccc'];
const PRICE = 7.2; // USD per hour
const BUDGET = 32; // maxNumBatchedTokens
const MS_USD = PRICE / 3_600_000; // USD per simulated millisecond

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  cost_usd: number;
}

const requestArb = fc.record({
  promptLen: fc.integer({ min: 1, max: 90 }),
  maxTokens: fc.integer({ min: 1, max: 8 }),
  key: fc.integer({ min: 0, max: KEYS.length - 1 }),
  stream: fc.boolean(),
  firstToken: fc.integer({ min: 3, max: 200 }),
});
const scheduleArb = fc.array(
  fc.record({ gapMs: fc.integer({ min: 0, max: 600_000 }), requests: fc.array(requestArb, { minLength: 1, maxLength: 4 }) }),
  { minLength: 1, maxLength: 4 },
);

function usageOf(body: string, stream: boolean): Usage {
  if (!stream) return (JSON.parse(body) as { usage: Usage }).usage;
  const events = body
    .split('\n\n')
    .filter((b) => b.startsWith('data: ') && b !== 'data: [DONE]')
    .map((b) => JSON.parse(b.slice(6)) as { usage?: Usage | null });
  const u = events.find((e) => e.usage)?.usage;
  assert.ok(u, 'stream has a usage chunk');
  return u;
}

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b)) + 1e-15;

describe('cost properties (random schedules on the real engine)', () => {
  it('usage, per-key and busy totals agree; all-in = price x uptime; chunks pay for themselves', async () => {
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (schedule) => {
        const clock = { ms: 1_000_000 };
        const startMs = clock.ms;
        const t = await startTinyServer({
          usdPerHour: PRICE,
          ledgerNow: () => clock.ms,
          engine: { now: () => (clock.ms += 1), maxNumBatchedTokens: BUDGET, maxNumSeqs: 8, enableChunkedPrefill: true },
          server: { apiKeys: new ApiKeyStore(KEYS), seriesIntervalMs: 60_000 },
        });
        try {
          let idleMs = 0;
          let sumUsage = 0;
          for (const group of schedule) {
            clock.ms += group.gapMs; // nothing runs: idle time only the all-in basis pays for
            idleMs += group.gapMs;
            const results = await Promise.all(
              group.requests.map(async (r) => {
                const prompt = Array.from({ length: r.promptLen }, (_, i) => ((r.firstToken + i * 7) % 250) + 3);
                const res = await t.server.app.inject({
                  method: 'POST',
                  url: '/v1/completions',
                  headers: { authorization: `Bearer ${KEYS[r.key]}`, 'content-type': 'application/json' },
                  payload: {
                    model: 'tiny',
                    prompt,
                    max_tokens: r.maxTokens,
                    temperature: 0,
                    ignore_eos: true,
                    stream: r.stream,
                    ...(r.stream ? { stream_options: { include_usage: true } } : {}),
                  },
                });
                assert.equal(res.statusCode, 200, res.body);
                return { r, u: usageOf(res.body, r.stream) };
              }),
            );
            for (const { r, u } of results) {
              assert.equal(u.completion_tokens, r.maxTokens);
              sumUsage += u.cost_usd;
              // Each step this request was in lasted >= 1 simulated ms and processed <= BUDGET tokens.
              const processed = u.prompt_tokens - u.prompt_tokens_details.cached_tokens + u.completion_tokens - 1;
              assert.ok(
                u.cost_usd >= ((MS_USD * processed) / BUDGET) * (1 - 1e-9),
                `cost ${u.cost_usd} < floor for ${processed} processed tokens`,
              );
            }
          }
          const ledger = t.metrics.ledger;
          const sumKeys = [...ledger.totals().values()].reduce((s, a) => s + a.costUsd, 0);
          const total = ledger.sinceStart();
          assert.ok(close(sumUsage, sumKeys), `usage ${sumUsage} vs keys ${sumKeys}`);
          assert.ok(close(sumKeys, total.busyUsd), `keys ${sumKeys} vs busy ${total.busyUsd}`);
          assert.ok(close(total.allInUsd, MS_USD * (clock.ms - startMs)), 'all-in = price x uptime');
          assert.ok(total.allInUsd - total.busyUsd >= MS_USD * idleMs * (1 - 1e-9), 'idle gaps are in all-in, not in busy');
        } finally {
          await t.close();
        }
      }),
      { numRuns: 8, seed: 20261201 },
    );
  });

  it('a request cut off by a drain timeout is still charged to its key (totals keep adding up)', async () => {
    const t = await startTinyServer({ usdPerHour: PRICE, server: { apiKeys: new ApiKeyStore(KEYS), seriesIntervalMs: 60_000 } });
    try {
      const res = t.server.app.inject({
        method: 'POST',
        url: '/v1/completions',
        headers: { authorization: `Bearer ${KEYS[1]}`, 'content-type': 'application/json' },
        payload: { model: 'tiny', prompt: [4, 5, 6], max_tokens: 200, ignore_eos: true },
      });
      while (t.metrics.ledger.sinceStart().generatedTokens < 5) await new Promise((r) => setImmediate(r));
      await t.server.drain(0);
      assert.equal((await res).statusCode, 503);
      const keys = t.metrics.ledger.totals();
      const total = t.metrics.ledger.sinceStart();
      assert.ok(total.busyUsd > 0);
      assert.ok(close(keys.get('k2-bbbb')!.costUsd, total.busyUsd), `key ${keys.get('k2-bbbb')?.costUsd} vs busy ${total.busyUsd}`);
    } finally {
      await t.close();
    }
  });
});
