// A step holding several sequences (varlen prefill, then mixed decode) with scattered,
// non-contiguous block tables gives each sequence the logits it gets when run alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/model/loader.js';
import { ForwardDriver } from './forward-driver.js';
import type { StepInputs } from '../../src/model/types.js';
import type { Backend, Tensor } from '../../src/runtime/backend.js';
import { createReferenceBackend } from '../../src/runtime/select.js';
import { compareLogits, describe, makeTinyModel, tokenSeq } from './tiny-models.js';

const BS = 4; // block size
const TABLES = [
  [7, 2, 5, 0],
  [1, 6, 3, 4],
]; // physical blocks per sequence (scattered on purpose)

function i32(b: Backend, owned: Tensor[], data: number[], shape = [data.length]): Tensor {
  const t = b.alloc(shape, 'i32');
  owned.push(t);
  b.upload(t, Int32Array.from(data));
  return t;
}

/** One step: seq s appends newTokens[s] after ctx[s] tokens already cached. */
function stepInputs(b: Backend, owned: Tensor[], newTokens: number[][], ctx: number[]): StepInputs {
  const ids: number[] = [],
    pos: number[] = [],
    slots: number[] = [],
    qsl = [0],
    seqLens: number[] = [],
    rows: number[] = [];
  newTokens.forEach((toks, s) => {
    toks.forEach((tok, j) => {
      const p = ctx[s]! + j;
      ids.push(tok);
      pos.push(p);
      slots.push(TABLES[s]![Math.floor(p / BS)]! * BS + (p % BS));
    });
    qsl.push(ids.length);
    seqLens.push(ctx[s]! + toks.length);
    rows.push(ids.length - 1);
  });
  return {
    numTokens: ids.length,
    tokenIds: i32(b, owned, ids),
    positions: i32(b, owned, pos),
    slotMapping: i32(b, owned, slots),
    attention: {
      numSeqs: newTokens.length,
      maxQueryLen: Math.max(...newTokens.map((t) => t.length)),
      maxSeqLen: Math.max(...seqLens),
      queryStartLoc: i32(b, owned, qsl),
      seqLens: i32(b, owned, seqLens),
      blockTables: i32(b, owned, TABLES.flat(), [2, TABLES[0]!.length]),
    },
    logitsRows: i32(b, owned, rows),
    numLogits: rows.length,
  };
}

for (const preset of ['tiny-mistral', 'tiny-qwen3']) {
  test(`${preset}: two sequences in one step == each alone (scattered blocks, prefill then decode)`, async () => {
    const m = makeTinyModel(preset);
    try {
      const V = m.config.vocabSize;
      const prompts = [tokenSeq(10, V, 1), tokenSeq(6, V, 2)];
      const next = [[17], [33]];
      const b = createReferenceBackend();
      const { model } = await loadModel(m.dir, b, { maxTokensPerStep: 32 });
      // Alone: one driver per sequence.
      const alone: Float32Array[][] = [];
      for (let s = 0; s < 2; s++) {
        const drv = new ForwardDriver(model, { blockSize: BS, maxSeqLen: 16 });
        alone.push([await drv.prefill(prompts[s]!), await drv.decode(next[s]![0]!)]);
        drv.dispose();
      }
      // Together: one cache, scattered block tables.
      const kv = model.allocKvCache(8, BS);
      const owned: Tensor[] = [];
      const l1 = await b.read(model.forward(stepInputs(b, owned, prompts, [0, 0]), kv));
      const l2 = await b.read(model.forward(stepInputs(b, owned, next, [10, 6]), kv));
      for (let s = 0; s < 2; s++) {
        const c1 = compareLogits(l1.subarray(s * V, (s + 1) * V), alone[s]![0]!, 1e-4, 1e-4);
        assert.ok(c1.worstRatio <= 1, `prefill seq ${s}: ${describe(c1)}`);
        const c2 = compareLogits(l2.subarray(s * V, (s + 1) * V), alone[s]![1]!, 1e-4, 1e-4);
        assert.ok(c2.worstRatio <= 1, `decode seq ${s}: ${describe(c2)}`);
      }
      for (const t of owned) b.free(t);
      for (const l of kv) {
        b.free(l.k);
        b.free(l.v);
      }
      model.dispose();
      assert.equal(b.memoryStats().numTensors, 0);
    } finally {
      m.cleanup();
    }
  });
}
