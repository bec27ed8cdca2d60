// Decode graphs on CPU through a fake graph-capable backend (recording-graphs.ts): buckets, padded
// decode steps give the same greedy / seeded tokens as eager steps (batch invariance included),
// prefill and mixed steps never replay, every replay follows a fresh upload of its inputs, and the
// captures happen once at start-up. Also through the CPU backend's own graphs, which the engine
// uses by default ('auto'), on a float model and on quantized GGUF files (Q8_0, Q4_K_M).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/engine/engine.js';
import { decodeBuckets, isPureDecode } from '../../src/engine/graph-cache.js';
import { samplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import type { SchedulerOutput } from '../../src/engine/scheduler.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import type { CausalLM } from '../../src/model/types.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import type { Backend } from '../../src/runtime/backend.js';
import { withRecordingGraphs, type RecordingBackend } from './recording-graphs.js';

const dir = mkdtempSync(join(tmpdir(), 'tm-graphs-'));
writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 11 });
const owned: { model: CausalLM; backend: Backend }[] = [];
after(() => {
  for (const o of owned) {
    o.model.dispose();
    o.backend.dispose();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function model(graphs: boolean): Promise<{ model: CausalLM; backend: Backend }> {
  const useCpu = process.env.TOKENMILL_TEST_BACKEND !== 'reference' && cpuAddonAvailable().available;
  const inner = useCpu ? createCpuBackend({ numThreads: 2 }) : createReferenceBackend();
  const backend = graphs ? withRecordingGraphs(inner) : inner;
  const { model: m } = await loadModel(dir, backend, { maxTokensPerStep: 128, maxLogitsPerStep: 32 });
  owned.push({ model: m, backend: inner });
  return { model: m, backend };
}

const prompt = (i: number, len: number): number[] => Array.from({ length: len }, (_, j) => (j * 37 + i * 101 + 5) % 500);
const greedy = (maxTokens: number): SamplingParams => samplingParams({ temperature: 0, maxTokens, ignoreEos: true });
const seeded = (maxTokens: number, seed: number): SamplingParams =>
  samplingParams({ temperature: 0.9, topP: 0.95, seed, maxTokens, ignoreEos: true });

interface Run {
  tokens: Map<string, number[]>;
  steps: { out: SchedulerOutput; events: string[] }[];
}

/** Runs requests (id, prompt, params, arrival step) on a fresh Engine to completion. */
async function run(
  m: CausalLM,
  decodeGraphs: boolean | 'auto',
  reqs: [string, number[], SamplingParams, number][],
  maxNumSeqs = 12,
): Promise<{ run: Run; engine: Engine }> {
  const engine = new Engine({ model: m, numBlocks: 64, blockSize: 8, maxModelLen: 96, maxNumBatchedTokens: 64, maxNumSeqs, decodeGraphs });
  const rb = m.backend as Partial<RecordingBackend>;
  const tokens = new Map<string, number[]>();
  const steps: Run['steps'] = [];
  const execute = engine.runner.execute.bind(engine.runner);
  engine.runner.execute = async (out, samplerOf) => {
    const from = rb.events?.length ?? 0;
    const r = await execute(out, samplerOf);
    steps.push({ out, events: rb.events?.slice(from) ?? [] });
    return r;
  };
  for (let step = 0; engine.numUnfinishedRequests > 0 || step <= Math.max(...reqs.map((r) => r[3])); step++) {
    for (const [id, p, params, at] of reqs) if (at === step) engine.addRequest({ requestId: id, promptTokenIds: p, params });
    for (const o of await engine.step()) tokens.set(o.requestId, [...(tokens.get(o.requestId) ?? []), ...o.newTokenIds]);
  }
  return { run: { tokens, steps }, engine };
}

test('decode buckets: 1, 2, 4, 8, 16, 32, then every 16, capped by maxNumSeqs', () => {
  assert.deepEqual(decodeBuckets(1), [1]);
  assert.deepEqual(decodeBuckets(12), [1, 2, 4, 8, 12]);
  assert.deepEqual(decodeBuckets(32), [1, 2, 4, 8, 16, 32]);
  assert.deepEqual(decodeBuckets(64), [1, 2, 4, 8, 16, 32, 48, 64]);
  assert.deepEqual(decodeBuckets(100), [1, 2, 4, 8, 16, 32, 48, 64, 80, 96, 100]);
});

test('graphs on = graphs off token for token (greedy and seeded, staggered arrivals, padding rows)', async () => {
  const reqs: [string, number[], SamplingParams, number][] = [];
  for (let i = 0; i < 7; i++)
    reqs.push([`r${i}`, prompt(i, 3 + 4 * i), i % 2 === 0 ? greedy(10 + i) : seeded(10 + i, 100 + i), i < 3 ? 0 : i]);
  const off = await run((await model(false)).model, false, reqs);
  const { model: gm, backend } = await model(true);
  const rb = backend as RecordingBackend;
  const { run: on, engine } = await run(gm, true, reqs);
  assert.deepEqual([...on.tokens.entries()].sort(), [...off.run.tokens.entries()].sort());
  for (const [id, , p] of reqs) assert.equal(on.tokens.get(id)!.length, p.maxTokens);

  // Start-up captured each bucket once; nothing was captured while serving.
  const buckets = engine.runner.graphCache!.buckets;
  assert.deepEqual(buckets, [1, 2, 4, 8, 12]);
  assert.equal(rb.graphs.numCaptures, buckets.length);
  assert.ok(on.steps.every((s) => !s.events.some((e) => e.startsWith('capture:') || e.startsWith('rec:'))));

  let replayed = 0;
  const padded = new Set<number>();
  for (const { out, events } of on.steps) {
    const replays = events.filter((e) => e.startsWith('replay:'));
    if (!isPureDecode(out)) {
      assert.equal(replays.length, 0, 'a prefill or mixed step replayed a graph');
      assert.ok(events.includes('embedding'), 'a prefill or mixed step ran eagerly');
      continue;
    }
    // A pure decode step: exactly one replay of the smallest bucket that holds it, no eager forward,
    // and its 7 inputs uploaded right before the replay.
    const S = out.scheduled.length;
    const bucket: number = buckets.find((b) => b >= S)!;
    assert.deepEqual(replays, [`replay:${engine.runner.graphCache!.key(bucket)}`]);
    assert.ok(!events.includes('embedding'));
    const at = events.indexOf(replays[0]!);
    assert.deepEqual(events.slice(at - 7, at), Array(7).fill('upload'));
    if (bucket > S) padded.add(S);
    replayed++;
  }
  assert.ok(replayed > 10, `only ${replayed} graph steps`);
  assert.ok(padded.size > 0, 'no step exercised padding rows');
  assert.ok(
    on.steps.some((s) => !isPureDecode(s.out)),
    'no mixed step',
  );
  const stats = engine.stats();
  assert.equal(stats.numFreeBlocks, stats.numTotalBlocks);
  engine.runner.dispose();
  assert.equal(rb.graphs.size, 0, 'dispose dropped the recordings');
});

test('batch invariance under graphs: a request alone (bucket 1) and among 11 others (bucket 12)', async () => {
  const { model: gm } = await model(true);
  const solo = await run(gm, true, [['x', prompt(0, 9), greedy(12), 0]]);
  solo.engine.runner.dispose();
  const reqs: [string, number[], SamplingParams, number][] = [['x', prompt(0, 9), greedy(12), 0]];
  for (let i = 1; i < 12; i++) reqs.push([`o${i}`, prompt(i, 2 + i), seeded(14, i), 0]);
  const busy = await run(gm, true, reqs);
  assert.deepEqual(busy.run.tokens.get('x'), solo.run.tokens.get('x'));
  assert.ok(busy.run.steps.some((s) => s.events.includes(`replay:${busy.engine.runner.graphCache!.key(12)}`)));
  assert.ok(solo.run.steps.some((s) => s.events.includes(`replay:${solo.engine.runner.graphCache!.key(1)}`)));
  busy.engine.runner.dispose();
});

const cpuSkip = cpuAddonAvailable().available ? false : 'cpu addon not built';

/** Eager (decodeGraphs false) vs the engine's default ('auto') on the CPU backend's own graphs. */
async function cpuGraphsOnEqualsOff(modelPath: string): Promise<void> {
  const reqs: [string, number[], SamplingParams, number][] = [];
  for (let i = 0; i < 6; i++)
    reqs.push([`c${i}`, prompt(i + 20, 4 + 3 * i), i % 2 === 0 ? greedy(9 + i) : seeded(9 + i, 7 + i), i < 2 ? 0 : i]);
  const backend = createCpuBackend({ numThreads: 2 });
  const { model: m } = await loadModel(modelPath, backend, { maxTokensPerStep: 128, maxLogitsPerStep: 32 });
  owned.push({ model: m, backend });
  const off = await run(m, false, reqs);
  assert.equal(off.engine.runner.graphCache, null);
  off.engine.runner.dispose();
  const on = await run(m, 'auto', reqs);
  assert.deepEqual([...on.run.tokens.entries()].sort(), [...off.run.tokens.entries()].sort());
  const replays = [...on.engine.runner.graphCache!.replays.values()].reduce((a, b) => a + b, 0);
  assert.ok(replays > 10, `only ${replays} replays`);
  on.engine.runner.dispose();
}

test("the CPU backend's own graphs, on by default: decode graphs on = off token for token", { skip: cpuSkip }, async () => {
  await cpuGraphsOnEqualsOff(dir);
});

// Rows of 256, so that q4_k_m writes Q4_K / Q6_K blocks (narrower rows fall back to the legacy types).
const WIDE = { hidden_size: 256, intermediate_size: 512 };
for (const type of ['q8_0', 'q4_k_m'] as const) {
  test(`CPU graphs on a ${type} GGUF file (matmulGgml replayed): on = off token for token`, { skip: cpuSkip }, async () => {
    const wide = join(dir, 'wide');
    if (!existsSync(wide)) writeRandomModel(wide, { ...MODEL_PRESETS['tiny-llama']!.config, ...WIDE }, { seed: 12 });
    const file = join(dir, `m-${type}.gguf`);
    convertToGguf(wide, file, { type });
    await cpuGraphsOnEqualsOff(file);
  });
}

test('two engines on one backend keep their own recordings: disposing one leaves the other replaying', { skip: cpuSkip }, async () => {
  const backend = createCpuBackend({ numThreads: 1 });
  const { model: m } = await loadModel(dir, backend, { maxTokensPerStep: 128, maxLogitsPerStep: 32 });
  owned.push({ model: m, backend });
  const reqs: [string, number[], SamplingParams, number][] = [['a', prompt(3, 7), greedy(12), 0]];
  const first = await run(m, 'auto', reqs);
  const second = new Engine({ model: m, numBlocks: 64, blockSize: 8, maxModelLen: 96, maxNumBatchedTokens: 64, maxNumSeqs: 12 });
  const cache = second.runner.graphCache!;
  assert.equal(backend.graphs!.size, 2 * cache.buckets.length);
  first.engine.runner.dispose(); // before the fix, this cleared every recording on the backend
  assert.equal(backend.graphs!.size, cache.buckets.length);
  // The second engine still serves, through its own replays.
  second.addRequest({ requestId: 'a', promptTokenIds: reqs[0]![1], params: reqs[0]![2] });
  const tokens: number[] = [];
  while (second.numUnfinishedRequests > 0) for (const o of await second.step()) tokens.push(...o.newTokenIds);
  assert.deepEqual(tokens, first.run.tokens.get('a'));
  assert.ok((cache.replays.get(1) ?? 0) > 5, 'the second engine replayed its bucket-1 recording');
  second.runner.dispose();
  assert.equal(backend.graphs!.size, 0);
});
