// Scheduler + KvCacheManager on a device-free simulator: chunked prefill under the token budget,
// prefix-cache hits with exact block ids, preemption from the tail with recompute, n > 1 sharing,
// aborts in every state, and a fast-check property over random workloads (see sim.ts invariants).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { expectedOutput, numScheduledTokens, Sim, type SimRequest } from './sim.js';

const range = (n: number, f = (i: number) => i % 40): number[] => Array.from({ length: n }, (_, i) => f(i));

test('chunked prefill splits a long prompt over the token budget, then decodes', () => {
  const sim = new Sim(16, 4, { maxNumBatchedTokens: 8, maxNumSeqs: 4, maxModelLen: 64 });
  sim.add({ id: 'a', prompt: range(20), maxTokens: 3 });
  const sizes: number[] = [];
  while (sim.sched.hasWork()) sizes.push(sim.step().totalNumScheduledTokens);
  assert.deepEqual(sizes, [8, 8, 4, 1, 1, 0]); // the last, empty step reports the finished id
  assert.deepEqual(sim.requests.get('a')!.sequences[0]!.outputTokenIds, expectedOutput(range(20), 3));
  assert.deepEqual(
    sim.outputs[0]!.scheduled.map((s) => s.sample),
    [false],
  );
  assert.deepEqual(
    sim.outputs[2]!.scheduled.map((s) => s.sample),
    [true],
  );
});

test('running sequences are served first; waiting ones take the rest of the budget', () => {
  const sim = new Sim(32, 4, { maxNumBatchedTokens: 10, maxNumSeqs: 8, maxModelLen: 64 });
  sim.add({ id: 'a', prompt: range(6), maxTokens: 4 });
  sim.add({ id: 'b', prompt: range(9, (i) => 30 + i), maxTokens: 2 });
  const o1 = sim.step();
  assert.deepEqual(numScheduledTokens(o1), [
    ['a#0', 6],
    ['b#0', 4],
  ]);
  const o2 = sim.step();
  assert.deepEqual(numScheduledTokens(o2), [
    ['a#0', 1],
    ['b#0', 5],
  ]);
  const o3 = sim.step();
  assert.deepEqual(numScheduledTokens(o3), [
    ['a#0', 1],
    ['b#0', 1],
  ]);
});

test("prefix cache: a second request reuses the first one's full blocks (exact ids), never the last token", () => {
  const sim = new Sim(10, 4, { maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 40 });
  const prompt = range(10); // blocks: [0..3] [4..7] [8,9]
  sim.add({ id: 'a', prompt, maxTokens: 1 });
  sim.step();
  assert.equal(sim.requests.get('a')!.sequences[0]!.isFinished, true);
  // a held blocks 0,1,2; freed tail first: 2 (partial, uncached) to the head, then 1, 0 to the tail.
  assert.deepEqual(sim.pool.freeQueue(), [2, 3, 4, 5, 6, 7, 8, 9, 1, 0]);
  const b = sim.add({ id: 'b', prompt: [...prompt.slice(0, 8), 33, 34, 35], maxTokens: 2 }).sequences[0]!;
  const o = sim.step();
  assert.deepEqual(b.blockIds, [0, 1, 2]);
  assert.equal(b.numCachedPromptTokens, 8);
  assert.deepEqual(numScheduledTokens(o), [['b#0', 3]]);
  assert.deepEqual(sim.kv.prefixCacheStats(), { queriedTokens: 21, hitTokens: 8 });
  // A prompt of exactly two full cached blocks recomputes its last block (the last token needs logits).
  const c = sim.add({ id: 'c', prompt: prompt.slice(0, 8), maxTokens: 1 }).sequences[0]!;
  sim.step();
  assert.equal(c.numCachedPromptTokens, 4);
  sim.run([]);
  assert.deepEqual(b.outputTokenIds, expectedOutput([...prompt.slice(0, 8), 33, 34, 35], 2));
  assert.equal(sim.pool.numFreeBlocks, 10);
});

test('eviction: the least recently freed cached block goes first, exact ids', () => {
  const sim = new Sim(4, 2, { maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 8 });
  sim.run([{ id: 'a', prompt: [1, 2, 3, 4, 5], maxTokens: 1 }]); // blocks 0,1 cached; 2 partial
  assert.deepEqual(sim.pool.freeQueue(), [2, 3, 1, 0]);
  sim.run([{ id: 'b', prompt: [9, 8, 7, 6, 5], maxTokens: 1 }]); // takes 2, 3, then evicts 1
  const b = sim.requests.get('b')!.sequences[0]!;
  assert.equal(b.numCachedPromptTokens, 0);
  // b took 2, 3 and evicted 1. Freed tail first: 1 (partial) to the head, then its cached 3, 2.
  assert.deepEqual(sim.pool.freeQueue(), [1, 0, 3, 2]);
  // a's first block (0) survived; its second (1) was evicted for b.
  const c = sim.add({ id: 'c', prompt: [1, 2, 3, 4, 5], maxTokens: 2 }).sequences[0]!;
  sim.step();
  assert.equal(c.numCachedPromptTokens, 2);
  assert.equal(c.blockIds[0], 0);
});

test('preemption: the tail is preempted, recomputed later, and outputs match the solo run', () => {
  // 6 blocks of 2 tokens; two sequences of 4 prompt + 6 output tokens cannot both fit.
  const reqs: SimRequest[] = [
    { id: 'a', prompt: [1, 2, 3, 4], maxTokens: 6 },
    { id: 'b', prompt: [5, 6, 7, 8], maxTokens: 6 },
  ];
  const sim = new Sim(6, 2, { maxNumBatchedTokens: 16, maxNumSeqs: 4, maxModelLen: 12 });
  const res = sim.run(reqs);
  const preempted = sim.outputs.flatMap((o) => o.preemptedSeqIds);
  assert.deepEqual(preempted.slice(0, 1), ['b#0'], 'the later arrival is preempted first');
  assert.ok(sim.sched.numPreemptions >= 1);
  assert.deepEqual(res.get('a#0'), expectedOutput([1, 2, 3, 4], 6));
  assert.deepEqual(res.get('b#0'), expectedOutput([5, 6, 7, 8], 6));
  assert.equal(sim.pool.numFreeBlocks, 6);
});

test('priority policy: lower priority value runs first and is preempted last', () => {
  const sim = new Sim(6, 2, { maxNumBatchedTokens: 16, maxNumSeqs: 4, maxModelLen: 12, policy: 'priority' });
  sim.add({ id: 'low', prompt: [1, 2, 3, 4], maxTokens: 6, priority: 5 });
  sim.add({ id: 'high', prompt: [5, 6, 7, 8], maxTokens: 6, priority: -1 });
  const o = sim.step();
  assert.equal(o.scheduled[0]!.seq.seqId, 'high#0');
  const res = sim.run([]);
  assert.ok(sim.outputs.flatMap((x) => x.preemptedSeqIds).every((id) => id === 'low#0'));
  assert.deepEqual(res.get('low#0'), expectedOutput([1, 2, 3, 4], 6));
});

test('n > 1: children wait for the prompt, then share its full blocks', () => {
  const sim = new Sim(20, 4, { maxNumBatchedTokens: 64, maxNumSeqs: 8, maxModelLen: 40 }, false);
  const req = sim.add({ id: 'r', prompt: range(10), maxTokens: 3, n: 3 });
  const o1 = sim.step();
  assert.deepEqual(
    numScheduledTokens(o1).map(([id]) => id),
    ['r#0'],
  );
  const o2 = sim.step();
  // Children recompute only the partial last block (tokens 8, 9) and share blocks 0 and 1.
  assert.deepEqual(numScheduledTokens(o2), [
    ['r#0', 1],
    ['r#1', 2],
    ['r#2', 2],
  ]);
  const [s0, s1, s2] = req.sequences as [(typeof req.sequences)[0], (typeof req.sequences)[0], (typeof req.sequences)[0]];
  assert.deepEqual(s1.blockIds.slice(0, 2), s0.blockIds.slice(0, 2));
  assert.deepEqual(s2.blockIds.slice(0, 2), s0.blockIds.slice(0, 2));
  assert.equal(sim.pool.refCount(s0.blockIds[0]!), 3);
  const res = sim.run([]);
  for (const i of [0, 1, 2]) assert.deepEqual(res.get(`r#${i}`), expectedOutput(range(10), 3));
  assert.equal(sim.pool.numFreeBlocks, 20);
});

test('abort in every state frees blocks at once', () => {
  const sim = new Sim(8, 4, { maxNumBatchedTokens: 4, maxNumSeqs: 2, maxModelLen: 32 });
  const a = sim.add({ id: 'a', prompt: range(10), maxTokens: 8 }); // prefilling in chunks
  sim.add({ id: 'b', prompt: range(3), maxTokens: 8 });
  const c = sim.add({ id: 'c', prompt: range(3), maxTokens: 8 }); // queued (maxNumSeqs 2)
  sim.step();
  assert.equal(a.sequences[0]!.status, 'running');
  sim.abort('a'); // mid-prefill
  sim.abort('c'); // queued
  sim.checkInvariants();
  assert.equal(a.sequences[0]!.blockIds.length, 0);
  assert.equal(c.sequences[0]!.finishReason, 'abort');
  sim.step();
  sim.step();
  sim.abort('b'); // decoding
  sim.checkInvariants();
  assert.equal(sim.pool.numFreeBlocks, 8);
  assert.equal(sim.sched.hasWork(), true, 'finished ids are still to be reported');
  const o = sim.step();
  assert.deepEqual(o.finishedSeqIds, ['b#0']);
  assert.equal(sim.sched.hasWork(), false);
});

test('property: random workloads keep every invariant and match solo outputs', () => {
  const reqArb = fc.record({
    prefix: fc.integer({ min: 0, max: 2 }),
    prefixLen: fc.integer({ min: 0, max: 12 }),
    tailLen: fc.integer({ min: 1, max: 10 }),
    tailSeed: fc.integer({ min: 0, max: 1000 }),
    maxTokens: fc.integer({ min: 1, max: 12 }),
    n: fc.integer({ min: 1, max: 3 }),
    priority: fc.integer({ min: -2, max: 2 }),
    arriveAt: fc.integer({ min: 0, max: 12 }),
    abortAt: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
  });
  let numPreemptions = 0;
  let numHitTokens = 0;
  let numAborted = 0;
  fc.assert(
    fc.property(
      fc.array(reqArb, { minLength: 1, maxLength: 10 }),
      fc.integer({ min: 1, max: 4 }), // block size
      fc.integer({ min: 0, max: 20 }), // extra blocks beyond one max-length sequence
      fc.integer({ min: 1, max: 24 }), // token budget
      fc.integer({ min: 1, max: 6 }), // max seqs
      fc.boolean(),
      fc.constantFrom('fcfs' as const, 'priority' as const),
      (specs, bs, extra, budget, maxSeqs, caching, policy) => {
        const maxModelLen = 34;
        const sim = new Sim(
          Math.ceil(maxModelLen / bs) + extra,
          bs,
          { maxNumBatchedTokens: budget, maxNumSeqs: maxSeqs, maxModelLen, policy },
          caching,
        );
        const prefixes = [range(12, (i) => (i * 7) % 40), range(12, (i) => (i * 3 + 1) % 40), range(12, () => 5)];
        const reqs: SimRequest[] = specs.map((s, i) => ({
          id: `r${i}`,
          prompt: [...prefixes[s.prefix]!.slice(0, s.prefixLen), ...range(s.tailLen, (j) => (s.tailSeed + j * 13) % 40)],
          maxTokens: s.maxTokens,
          n: s.n,
          priority: s.priority,
          arriveAt: s.arriveAt,
          abortAt: s.abortAt,
        }));
        const res = sim.run(reqs);
        for (const r of reqs) {
          const req = sim.requests.get(r.id)!;
          for (const seq of req.sequences) {
            assert.ok(seq.isFinished, `${seq.seqId} unfinished`);
            assert.equal(seq.blockIds.length, 0);
            const out = res.get(seq.seqId)!;
            const want = expectedOutput(r.prompt, r.maxTokens);
            if (seq.finishReason === 'abort') assert.deepEqual(out, want.slice(0, out.length));
            else assert.deepEqual(out, want, `${seq.seqId}`);
          }
        }
        assert.equal(sim.pool.numFreeBlocks, sim.pool.numBlocks);
        numPreemptions += sim.sched.numPreemptions;
        numHitTokens += sim.kv.prefixCacheStats().hitTokens;
        for (const req of sim.requests.values()) if (req.sequences[0]!.finishReason === 'abort') numAborted++;
      },
    ),
    { numRuns: 300, seed: 20261125 },
  );
  // The workloads must actually exercise the hard paths.
  if (process.env.SIM_DEBUG) console.log({ numPreemptions, numHitTokens, numAborted });
  assert.ok(numPreemptions > 50, `only ${numPreemptions} preemptions`);
  assert.ok(numHitTokens > 100, `only ${numHitTokens} prefix-hit tokens`);
  assert.ok(numAborted > 20, `only ${numAborted} aborts`);
});

test('abort of a preempted sequence: it leaves the waiting queue holding nothing', () => {
  const sim = new Sim(6, 2, { maxNumBatchedTokens: 16, maxNumSeqs: 4, maxModelLen: 12 });
  sim.add({ id: 'a', prompt: [1, 2, 3, 4], maxTokens: 6 });
  const b = sim.add({ id: 'b', prompt: [5, 6, 7, 8], maxTokens: 6 }).sequences[0]!;
  while (b.status !== 'preempted') sim.step();
  assert.equal(b.blockIds.length, 0);
  sim.abort('b');
  sim.checkInvariants();
  assert.equal(b.status, 'finished');
  assert.equal(b.finishReason, 'abort');
  assert.equal(sim.sched.numWaiting, 0);
  const res = sim.run([]);
  assert.deepEqual(res.get('a#0'), expectedOutput([1, 2, 3, 4], 6));
  assert.equal(sim.pool.numFreeBlocks, 6);
});
