// AsyncEngine on a seeded tiny random Llama (CPU backend when built, reference otherwise):
// batch invariance, preemption + recompute equality, aborts (50 streams, every 5th cancelled),
// n > 1, admission errors, drain, a dying kernel, cost apportioning and observer events.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncEngine, type AsyncEngineOptions } from '../../src/engine/async-engine.js';
import type { EngineOutput, EngineRequest } from '../../src/engine/engine-api.js';
import { samplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import type { CausalLM } from '../../src/model/types.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { TokenmillError } from '../../src/util/errors.js';
import { disposeTinyModel, tinyModel } from './tiny-model.js';
import { checkKvInvariants } from './sim.js';

after(disposeTinyModel);

const prompt = (i: number, len = 12): number[] => Array.from({ length: len }, (_, j) => (j * 37 + i * 101 + 5) % 500);

async function engine(opts: Partial<AsyncEngineOptions> = {}): Promise<AsyncEngine> {
  const { model } = await tinyModel();
  return new AsyncEngine({ model, modelId: 'tiny', numBlocks: 256, blockSize: 16, maxNumBatchedTokens: 256, maxNumSeqs: 32, ...opts });
}

interface Collected {
  tokens: number[][];
  outputs: EngineOutput[];
  last: EngineOutput | undefined;
}

async function collect(it: AsyncIterable<EngineOutput>, n = 1): Promise<Collected> {
  const tokens: number[][] = Array.from({ length: n }, () => []);
  const outputs: EngineOutput[] = [];
  for await (const o of it) {
    outputs.push(o);
    tokens[o.index]!.push(...o.newTokenIds);
  }
  return { tokens, outputs, last: outputs.at(-1) };
}

const greedy = (maxTokens: number, extra: Partial<SamplingParams> = {}): SamplingParams =>
  samplingParams({ temperature: 0, maxTokens, ignoreEos: true, ...extra });
const seeded = (maxTokens: number, seed: number): SamplingParams => samplingParams({ temperature: 1, seed, maxTokens, ignoreEos: true });
const req = (id: string, promptTokenIds: number[], params: SamplingParams): EngineRequest => ({ requestId: id, promptTokenIds, params });

test('batch invariance: a request alone and among 31 concurrent ones gives identical tokens', async () => {
  // Device argmax path, host path with logprobs (compared bit for bit), seeded sampling.
  for (const params of [greedy(16), greedy(16, { logprobs: 1 }), seeded(16, 42)]) {
    const solo = await engine();
    const alone = await collect(solo.generate(req('x', prompt(0, 20), params)));
    await solo.shutdown();
    const busy = await engine();
    const runs = [collect(busy.generate(req('x', prompt(0, 20), params)))];
    for (let i = 1; i < 32; i++)
      runs.push(collect(busy.generate(req(`o${i}`, prompt(i, 5 + i), i % 2 === 0 ? greedy(8 + i) : seeded(8 + i, i)))));
    const all = await Promise.all(runs);
    assert.deepEqual(all[0]!.tokens, alone.tokens);
    assert.deepEqual(
      all[0]!.outputs.map((o) => o.logprobs),
      alone.outputs.map((o) => o.logprobs),
    );
    assert.equal(alone.tokens[0]!.length, 16);
    assert.equal(busy.stats().numFreeBlocks, busy.stats().numTotalBlocks);
    await busy.shutdown();
  }
});

test('preemption: sequences preempted and recomputed equal their unpreempted runs', async () => {
  const reqs = Array.from({ length: 6 }, (_, i) => req(`p${i}`, prompt(i, 20), i % 2 === 0 ? greedy(12) : seeded(12, 100 + i)));
  const solo: number[][] = [];
  for (const r of reqs) {
    const e = await engine();
    solo.push((await collect(e.generate(r))).tokens[0]!);
    await e.shutdown();
  }
  let preemptions = 0;
  // 24 blocks of 4 tokens; each request needs 8 blocks: at most 3 fit at once.
  let checkedSteps = 0;
  let violation: unknown = null;
  const observer = {
    onPreemption: () => void preemptions++,
    onStep: () => {
      checkedSteps++;
      try {
        checkKvInvariants(e.engine.kv.pool, e.engine.scheduler.sequences());
      } catch (err) {
        violation ??= err; // the engine swallows observer errors: keep it for the test
      }
    },
  };
  const e: AsyncEngine = await engine({ numBlocks: 24, blockSize: 4, maxNumBatchedTokens: 64, observer });
  const got = await Promise.all(reqs.map((r) => collect(e.generate(r))));
  assert.ok(checkedSteps > 20);
  assert.equal(violation, null);
  assert.ok(preemptions > 0, 'the workload must preempt');
  assert.deepEqual(
    got.map((g) => g.tokens[0]),
    solo,
  );
  assert.equal(e.stats().numFreeBlocks, 24);
  await e.shutdown();
});

test('abort: 50 streams, every 5th cancelled mid-stream; the rest complete exactly and the pool empties', async () => {
  let checkedSteps = 0;
  let violation: unknown = null;
  const onStep = (): void => {
    checkedSteps++;
    try {
      checkKvInvariants(e.engine.kv.pool, e.engine.scheduler.sequences());
    } catch (err) {
      violation ??= err; // the engine swallows observer errors: keep it for the test
    }
  };
  const e: AsyncEngine = await engine({ numBlocks: 200, maxNumSeqs: 16, maxNumBatchedTokens: 128, observer: { onStep } });
  const runs = Array.from({ length: 50 }, async (_, i) => {
    const maxTokens = 10 + (i % 7);
    const ac = new AbortController();
    const it = e.generate(req(`a${i}`, prompt(i, 8 + (i % 13)), greedy(maxTokens)), ac.signal);
    let n = 0;
    let last: EngineOutput | undefined;
    for await (const o of it) {
      n += o.newTokenIds.length;
      last = o;
      if (i % 5 === 4 && n >= 3) {
        if (i % 10 === 4)
          ac.abort(); // via the signal: the stream ends with finishReason 'abort'
        else break; // the consumer walks away: the engine aborts the request
      }
    }
    return { i, n, maxTokens, last };
  });
  const res = await Promise.all(runs);
  for (const r of res) {
    if (r.i % 5 !== 4) {
      assert.equal(r.n, r.maxTokens, `stream ${r.i}`);
      assert.equal(r.last!.finishReason, 'length');
      assert.equal(r.last!.numGeneratedTokens, r.maxTokens);
    } else {
      assert.ok(r.n < r.maxTokens, `stream ${r.i} was cancelled`);
      if (r.i % 10 === 4) assert.equal(r.last!.finishReason, 'abort');
    }
  }
  await new Promise((r) => setImmediate(r));
  assert.ok(checkedSteps > 10);
  assert.equal(violation, null);
  assert.equal(e.engine.numUnfinishedRequests, 0);
  assert.deepEqual(e.stats(), { numRunning: 0, numWaiting: 0, kvCacheUsage: 0, numFreeBlocks: 200, numTotalBlocks: 200, blockSize: 16 });
  await e.shutdown();
});

test("abort frees the request's blocks within one step, in every state", async () => {
  let steps = 0;
  const e = await engine({ maxNumSeqs: 2, maxNumBatchedTokens: 16, observer: { onStep: () => void steps++ } });
  const outs = ['q0', 'q1', 'q2'].map((id, i) => collect(e.generate(req(id, prompt(i, 40), greedy(50)))));
  await new Promise((r) => setImmediate(r));
  // q0 prefilling (40 tokens, 16 per step), q1 waiting for budget, q2 queued (maxNumSeqs 2).
  e.abort('q0');
  e.abort('q2');
  const s0 = steps;
  while (steps < s0 + 1) await new Promise((r) => setImmediate(r));
  assert.equal(e.engine.hasRequest('q0'), false);
  assert.equal(e.engine.hasRequest('q2'), false);
  while (steps < s0 + 6) await new Promise((r) => setImmediate(r));
  e.abort('q1'); // decoding by now
  const s1 = steps;
  while (steps < s1 + 1 && e.engine.hasRequest('q1')) await new Promise((r) => setImmediate(r));
  assert.equal(e.engine.hasRequest('q1'), false);
  const r = await Promise.all(outs);
  for (const c of r) assert.equal(c.last!.finishReason, 'abort');
  assert.equal(e.stats().numFreeBlocks, e.stats().numTotalBlocks);
  await e.shutdown();
});

test('n > 1: choices share the prompt; greedy choices agree, seeded ones are separate streams', async () => {
  const e = await engine();
  const one = await collect(e.generate(req('one', prompt(3, 30), greedy(8))));
  const three = await collect(e.generate(req('three', prompt(3, 30), greedy(8, { n: 3 }))), 3);
  for (const t of three.tokens) assert.deepEqual(t, one.tokens[0]);
  assert.equal(three.last!.numGeneratedTokens, 24);
  assert.equal(three.outputs.filter((o) => o.finished).length, 3);
  const s = await collect(
    e.generate(req('s', prompt(4, 30), samplingParams({ temperature: 1, seed: 9, n: 3, maxTokens: 12, ignoreEos: true }))),
    3,
  );
  assert.ok(new Set(s.tokens.map((t) => t.join(','))).size > 1, 'seeded choices differ');
  assert.equal(e.stats().numFreeBlocks, e.stats().numTotalBlocks);
  await e.shutdown();
});

test('prefix cache: a repeated prompt reports cached tokens and the observer sees the lookups', async () => {
  const lookups: [number, number][] = [];
  const scheduled: string[] = [];
  const e = await engine({
    observer: { onPrefixCacheQuery: (q, h) => void lookups.push([q, h]), onRequestScheduled: (id) => void scheduled.push(id) },
  });
  const a = await collect(e.generate(req('a', prompt(5, 40), greedy(4))));
  const b = await collect(e.generate(req('b', prompt(5, 40), greedy(4))));
  assert.equal(a.last!.numCachedPromptTokens, 0);
  assert.equal(b.last!.numCachedPromptTokens, 32);
  assert.deepEqual(b.tokens, a.tokens);
  assert.deepEqual(lookups, [
    [40, 0],
    [40, 32],
  ]);
  assert.deepEqual(scheduled, ['a', 'b']);
  await e.shutdown();
});

test('admission: context_length_exceeded names the numbers; server_overloaded past the queue bound', async () => {
  const e = await engine({ maxWaitingRequests: 2 });
  assert.throws(
    () => e.generate(req('big', prompt(0, 250), greedy(10))),
    (err: unknown) => {
      assert.ok(err instanceof TokenmillError);
      assert.equal(err.code, 'context_length_exceeded');
      assert.match(err.message, /256/);
      assert.match(err.message, /260/);
      assert.match(err.message, /250 in the prompt, 10 for the completion/);
      assert.deepEqual(err.details, { promptTokens: 250, maxTokens: 10, maxModelLen: 256 });
      return true;
    },
  );
  assert.throws(() => e.generate(req('bad', [0, 99999], greedy(1))), { code: 'invalid_argument' });
  assert.throws(() => e.generate(req('t', [1], samplingParams({ topP: 0 }))), { code: 'invalid_argument' });
  const started: Promise<Collected>[] = [];
  let overloaded = 0;
  for (let i = 0; i < 10; i++) {
    try {
      started.push(collect(e.generate(req(`w${i}`, prompt(i), greedy(2)))));
    } catch (err) {
      assert.equal((err as TokenmillError).code, 'server_overloaded');
      overloaded++;
    }
  }
  assert.ok(overloaded >= 7 && started.length <= 3, `${started.length} admitted`);
  await Promise.all(started);
  await e.shutdown();
});

test('drain: finishes in-flight work, or aborts it at the timeout; then refuses new requests', async () => {
  const e = await engine();
  const runs = [0, 1, 2].map((i) => collect(e.generate(req(`d${i}`, prompt(i), greedy(6)))));
  await e.drain(60_000);
  for (const r of await Promise.all(runs)) assert.equal(r.last!.finishReason, 'length');
  assert.throws(() => e.generate(req('late', prompt(9), greedy(2))), { code: 'server_draining' });
  const e2 = await engine();
  const runs2 = [0, 1].map((i) => collect(e2.generate(req(`d${i}`, prompt(i), greedy(200)))));
  await e2.drain(0);
  for (const r of await Promise.all(runs2)) assert.equal(r.last!.finishReason, 'abort');
  assert.equal(e2.stats().numFreeBlocks, e2.stats().numTotalBlocks);
  await e2.shutdown();
  await e.shutdown();
});

test('a throwing kernel kills the engine: in-flight requests get the error, later generate() throws engine_dead', async () => {
  const { model } = await tinyModel();
  let calls = 0;
  const failing: CausalLM = Object.create(model, {
    forward: {
      value: (s: Parameters<CausalLM['forward']>[0], kv: Parameters<CausalLM['forward']>[1]) => {
        if (++calls === 4) throw new TokenmillError('native_error', 'kernel exploded');
        return model.forward(s, kv);
      },
    },
  });
  // decodeGraphs off: the throw sits in forward(), which a decode-graph replay does not call.
  const e = new AsyncEngine({ model: failing, modelId: 'tiny', numBlocks: 64, decodeGraphs: false });
  // The one dead-engine event: it fires once, before any in-flight stream sees the error.
  const fired: string[] = [];
  e.onFatal((err) => fired.push(`${err.code}, ${e.engine.numUnfinishedRequests} unfinished`));
  const runs = [0, 1].map((i) => collect(e.generate(req(`k${i}`, prompt(i), greedy(20)))));
  for (const r of runs) await assert.rejects(r, { code: 'native_error', message: 'kernel exploded' });
  assert.equal((e.fatalError as TokenmillError).code, 'native_error');
  assert.deepEqual(fired, ['native_error, 2 unfinished']);
  e.onFatal((err) => fired.push(`late ${err.code}`)); // a listener added after the death runs at once
  assert.deepEqual(fired, ['native_error, 2 unfinished', 'late native_error']);
  assert.throws(() => e.generate(req('after', prompt(3), greedy(2))), { code: 'engine_dead' });
  await e.shutdown();
});

test("cost: each step's wall time is apportioned over its tokens; request costs sum to the machine cost", async () => {
  const { model } = await tinyModel();
  let clockMs = 0;
  let steps = 0;
  const timed: CausalLM = Object.create(model, {
    forward: {
      value: (s: Parameters<CausalLM['forward']>[0], kv: Parameters<CausalLM['forward']>[1]) => {
        clockMs += 100; // every step takes exactly 100 ms
        steps++;
        return model.forward(s, kv);
      },
    },
  });
  // decodeGraphs off: the clock advances in forward(), which a decode-graph replay does not call.
  const e = new AsyncEngine({
    model: timed,
    modelId: 'tiny',
    numBlocks: 64,
    maxNumBatchedTokens: 16,
    usdPerHour: 36,
    now: () => clockMs,
    decodeGraphs: false,
  });
  const res = await Promise.all([0, 1, 2].map((i) => collect(e.generate(req(`c${i}`, prompt(i, 10 + 10 * i), greedy(5))))));
  const total = res.reduce((a, r) => a + r.last!.costUsd, 0);
  assert.ok(Math.abs(total - steps * 0.001) < 1e-12, `${total} vs ${steps * 0.001}`); // 36 $/h = 0.001 $ per 100 ms
  for (const r of res) {
    const costs = r.outputs.map((o) => o.costUsd);
    assert.ok(
      costs.every((c, k) => k === 0 || c >= costs[k - 1]!),
      'cost only grows',
    );
  }
  await e.shutdown();
});

test('text and stop strings: a detokenizer plugs in; stop strings cut the text and finish the choice', async () => {
  const letters = (t: number): string => String.fromCharCode(97 + (t % 26));
  const e = await engine({ detokenizer: () => ({ push: letters }) });
  const free = await collect(e.generate(req('f', prompt(7), greedy(12))));
  const text = free.outputs.map((o) => o.newText).join('');
  assert.equal(text, free.tokens[0]!.map(letters).join(''));
  const stop = text.slice(3, 5);
  const cut = await collect(e.generate(req('s', prompt(7), greedy(12, { stop: [stop] }))));
  assert.equal(cut.outputs.map((o) => o.newText).join(''), text.slice(0, text.indexOf(stop)));
  assert.equal(cut.last!.finishReason, 'stop');
  assert.equal(e.stats().numFreeBlocks, e.stats().numTotalBlocks);
  await e.shutdown();
});

test('text from the model tokenizer equals decoding the generated ids; logprobs ride along', async () => {
  const { dir } = await tinyModel();
  const tokenizer = loadTokenizer(dir);
  const e = await engine({ tokenizer });
  const r = await collect(e.generate(req('t', prompt(2), greedy(20, { logprobs: 2 }))));
  assert.equal(r.outputs.map((o) => o.newText).join(''), await tokenizer.decode(r.tokens[0]!));
  const lps = r.outputs.flatMap((o) => o.logprobs ?? []);
  assert.deepEqual(
    lps.map((l) => l.tokenId),
    r.tokens[0],
  );
  for (const l of lps) {
    assert.equal(l.top.length, 2);
    assert.ok(l.logprob <= 0 && l.top[0]!.logprob >= l.logprob - 1e-6, 'greedy picks the top token');
  }
  await e.shutdown();
});

test('KV pool sized from a byte budget', async () => {
  const { model } = await tinyModel();
  const perBlock = model.kvBytesPerToken() * 16;
  const e = new AsyncEngine({ model, modelId: 'tiny', kvCacheBytes: perBlock * 10 + perBlock / 2 });
  assert.equal(e.stats().numTotalBlocks, 10);
  assert.equal(e.maxModelLen, 160);
  await e.shutdown();
  assert.throws(() => new AsyncEngine({ model, modelId: 'tiny', kvCacheBytes: perBlock / 2 }), { code: 'invalid_argument' });
});

test('engine options are validated before anything is allocated', async () => {
  const { model } = await tinyModel();
  const bad = (o: Partial<AsyncEngineOptions>): void =>
    assert.throws(() => new AsyncEngine({ model, modelId: 'tiny', numBlocks: 64, ...o }), { code: 'invalid_argument' });
  bad({ numBlocks: undefined });
  bad({ maxNumBatchedTokens: 100_000 });
  bad({ maxNumSeqs: 32, maxNumBatchedTokens: 16 });
  bad({ maxNumSeqs: 1000 });
  bad({ enableChunkedPrefill: false, maxNumBatchedTokens: 64 });
  bad({ maxModelLen: 100_000 });
  bad({ usdPerHour: -1 });
  bad({ blockSize: 0 });
});
