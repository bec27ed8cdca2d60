// Golden on CUDA through serving's path (generate() over the Engine, device sampling and argmax as
// `serve`): stories260K (llama2.c .bin converted to HF) in f32 reproduces reference_greedy.json
// id for id (same ids through the same tokenizer = the same text, byte for byte) with logits at
// positions 0..2 within 1e-4; bf16 is run too and its agreement recorded (not asserted).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2c } from '../../src/model/convert/llama2c.js';
import { loadModel } from '../../src/model/loader.js';
import { goldenRun } from '../golden/golden-run.js';
import { createCudaBackend } from '../../src/runtime/select.js';
import { sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';
import { cudaSkip, writeResult } from './gpu-env.js';

const skip = cudaSkip || skipUnlessShared('stories260K/stories260K.bin', 'stories260K/tok512.bin', 'stories260K/reference_greedy.json');

interface Reference {
  bos_id: number;
  steps: number;
  generated_ids: number[];
  logits_pos0: number[];
  logits_pos1: number[];
  logits_pos2: number[];
}

let work = '';
let dir = '';
let ref: Reference;
before(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'tm-gpu-golden-'));
  dir = join(work, 'stories260K');
  convertLlama2c(sharedPath('stories260K/stories260K.bin'), sharedPath('stories260K/tok512.bin'), dir);
  ref = JSON.parse(readFileSync(sharedPath('stories260K/reference_greedy.json'), 'utf8')) as Reference;
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

async function greedy(dtype: 'f32' | 'bf16'): Promise<{ ids: number[]; worstLogitDiff: number }> {
  const backend = createCudaBackend({ dtype });
  const { model, config } = await loadModel(dir, backend);
  try {
    const run = await goldenRun(model, null, [ref.bos_id], ref.steps, 3);
    let worst = 0;
    for (let pos = 0; pos <= 2; pos++) {
      const want = ref[`logits_pos${pos}` as 'logits_pos0'];
      const got = run.logits[pos]!;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    }
    const ids = run.finishReason === 'stop' && config.eosTokenIds.includes(run.ids.at(-1)!) ? run.ids.slice(0, -1) : run.ids;
    return { ids, worstLogitDiff: worst };
  } finally {
    model.dispose();
    backend.dispose();
  }
}

test('stories260K f32 on CUDA reproduces the reference greedy ids (so the text) byte for byte', { skip }, async () => {
  const r = await greedy('f32');
  const bf = await greedy('bf16');
  let same = 0;
  while (same < Math.min(bf.ids.length, ref.generated_ids.length) && bf.ids[same] === ref.generated_ids[same]) same++;
  writeResult('stories260k', {
    f32: {
      idsMatch: JSON.stringify(r.ids) === JSON.stringify(ref.generated_ids),
      worstLogitDiffPos0to2: r.worstLogitDiff,
      numIds: r.ids.length,
    },
    bf16: { matchingPrefixTokens: same, of: ref.generated_ids.length, worstLogitDiffPos0to2: bf.worstLogitDiff },
  });
  assert.deepEqual(r.ids, ref.generated_ids);
  assert.ok(r.worstLogitDiff <= 1e-4, `f32 logits at positions 0..2 differ by ${r.worstLogitDiff}`);
});
