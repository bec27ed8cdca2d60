// Write the HF-parity fixture: every tiny architecture (plus a bf16 sharded Qwen2) as a seeded random
// model, with our reference-backend logits for a 64-token prompt, for test/model/hf_parity.py to
// compare against PyTorch + transformers on a machine that has them:
//   node --import tsx scripts/gen-hf-parity.ts [--out .gpu/hf-check]; python3 test/model/hf_parity.py .gpu/hf-check
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/model/loader.js';
import { MODEL_PRESETS, TINY_PRESETS } from '../src/model/model-presets.js';
import { writeRandomModel, type RandomWeightDType } from '../src/model/random-model.js';
import { ForwardDriver } from '../test/model/forward-driver.js';
import { createReferenceBackend } from '../src/runtime/select.js';

const outIdx = process.argv.indexOf('--out');
const out = outIdx > 0 ? process.argv[outIdx + 1]! : '.gpu/hf-check';
type Case = { name: string; preset: string; dtype: RandomWeightDType; maxShardBytes?: number };
const cases: Case[] = [
  ...TINY_PRESETS.map((p) => ({ name: p, preset: p, dtype: 'f32' as const })),
  { name: 'tiny-qwen2-bf16-sharded', preset: 'tiny-qwen2', dtype: 'bf16', maxShardBytes: 100_000 },
  { name: 'tiny-llama3-f16', preset: 'tiny-llama3', dtype: 'f16' },
];
const manifest: { name: string; tokens: number[]; vocab: number }[] = [];
for (const c of cases) {
  const dir = join(out, c.name);
  const cfg = writeRandomModel(dir, MODEL_PRESETS[c.preset]!.config, { seed: 5, dtype: c.dtype, maxShardBytes: c.maxShardBytes });
  const backend = createReferenceBackend();
  const { model } = await loadModel(dir, backend, { maxTokensPerStep: 64, maxLogitsPerStep: 64 });
  const drv = new ForwardDriver(model, { maxSeqLen: 64 });
  const tokens = Array.from({ length: 64 }, (_, i) => (i * 131 + 7) % cfg.vocabSize);
  const logits = await drv.prefill(tokens, { allLogits: true }); // f32 [64, V]
  writeFileSync(join(dir, 'ours.f32'), Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
  drv.dispose();
  model.dispose();
  manifest.push({ name: c.name, tokens, vocab: cfg.vocabSize });
}
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest));
console.log(`gen-hf-parity: ${cases.length} models in ${out}`);
