// BatchBuilder: exact token ids, positions, slot mappings, queryStartLoc, seqLens, block tables and
// logits rows for a mixed step (prefill chunk + decode + prefix hit), uploaded into buffers
// allocated once (no device allocation per step).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchBuilder } from '../../src/engine/batch-builder.js';
import { createReferenceBackend } from '../../src/runtime/select.js';
import { numScheduledTokens, Sim } from './sim.js';

test('a mixed step flattens exactly, and building allocates nothing on the device', async () => {
  const b = createReferenceBackend();
  const sim = new Sim(16, 4, { maxNumBatchedTokens: 12, maxNumSeqs: 4, maxModelLen: 32 });
  sim.add({ id: 'a', prompt: [10, 11, 12, 13, 14, 15], maxTokens: 4 });
  sim.step(); // a: 6 prompt tokens -> blocks 0, 1; samples one token
  sim.add({ id: 'b', prompt: [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30], maxTokens: 2 });
  const out = sim.sched.schedule(); // a decodes 1 token, b prefills an 11-token chunk
  const a = sim.requests.get('a')!.sequences[0]!;
  const bs = sim.requests.get('b')!.sequences[0]!;
  assert.deepEqual(numScheduledTokens(out), [
    ['a#0', 1],
    ['b#0', 11],
  ]);
  const builder = new BatchBuilder(b, { maxNumTokens: 12, maxNumSeqs: 4, maxBlocksPerSeq: 8, blockSize: 4 });
  const before = b.memoryStats();
  const { inputs, logitsFor } = builder.build(out);
  assert.deepEqual(b.memoryStats(), before, 'no device allocation per step');
  const ints = async (t: typeof inputs.tokenIds): Promise<number[]> => [...(await b.readInt32(t))];
  assert.equal(inputs.numTokens, 12);
  assert.deepEqual(await ints(inputs.tokenIds), [a.tokenIds[6]!, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
  assert.deepEqual(await ints(inputs.positions), [6, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const slot = (blocks: number[], p: number): number => blocks[Math.floor(p / 4)]! * 4 + (p % 4);
  assert.deepEqual(await ints(inputs.slotMapping), [slot(a.blockIds, 6), ...Array.from({ length: 11 }, (_, p) => slot(bs.blockIds, p))]);
  assert.deepEqual(a.blockIds, [0, 1]);
  assert.deepEqual(bs.blockIds, [2, 3, 4]);
  assert.deepEqual(await ints(inputs.attention.queryStartLoc), [0, 1, 12]);
  assert.deepEqual(await ints(inputs.attention.seqLens), [7, 11]);
  assert.deepEqual(inputs.attention.blockTables.shape, [2, 8]);
  assert.deepEqual(await ints(inputs.attention.blockTables), [0, 1, 0, 0, 0, 0, 0, 0, 2, 3, 4, 0, 0, 0, 0, 0]);
  assert.equal(inputs.attention.maxQueryLen, 11);
  assert.equal(inputs.attention.maxSeqLen, 11);
  assert.deepEqual(await ints(inputs.logitsRows), [0, 11]);
  assert.deepEqual(
    logitsFor.map((e) => e!.seq.seqId),
    ['a#0', 'b#0'],
  );
  builder.dispose();
  assert.equal(b.memoryStats().numTensors, 0);
  b.dispose();
});

test('a pure prefill-chunk step asks for one placeholder logits row', async () => {
  const b = createReferenceBackend();
  const sim = new Sim(16, 4, { maxNumBatchedTokens: 5, maxNumSeqs: 4, maxModelLen: 32 });
  sim.add({ id: 'a', prompt: Array.from({ length: 12 }, (_, i) => i), maxTokens: 1 });
  const out = sim.sched.schedule();
  const builder = new BatchBuilder(b, { maxNumTokens: 5, maxNumSeqs: 4, maxBlocksPerSeq: 8, blockSize: 4 });
  const { inputs, logitsFor } = builder.build(out);
  assert.equal(inputs.numLogits, 1);
  assert.deepEqual([...(await b.readInt32(inputs.logitsRows))], [4]);
  assert.deepEqual(logitsFor, [null]);
  builder.dispose();
  b.dispose();
});
