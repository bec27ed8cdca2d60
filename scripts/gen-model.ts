// Generate a seeded random-weight model from a named preset:
//   node --import tsx scripts/gen-model.ts --preset tiny-llama --out DIR [--dtype f32|f16|bf16] [--seed N]
//     [--max-shard-bytes N] [--no-tokenizer]
// Deterministic: the same preset, seed and dtype give byte-identical files.
import { Command } from 'commander';
import { MODEL_PRESETS } from '../src/model/model-presets.js';
import { writeRandomModel, type RandomWeightDType } from '../src/model/random-model.js';

const program = new Command()
  .name('gen-model')
  .requiredOption('--preset <name>', `one of: ${Object.keys(MODEL_PRESETS).join(', ')}`)
  .requiredOption('--out <dir>', 'output directory')
  .option('--dtype <dtype>', "f32 | f16 | bf16 (default: the preset's)")
  .option('--seed <n>', 'PRNG seed', '0')
  .option('--max-shard-bytes <n>', 'split into shards of at most this many bytes')
  .option('--no-tokenizer', 'skip tokenizer.json / tokenizer_config.json');
program.parse();
const o = program.opts<{ preset: string; out: string; dtype?: string; seed: string; maxShardBytes?: string; tokenizer: boolean }>();

const preset = MODEL_PRESETS[o.preset];
if (preset === undefined) {
  console.error(`gen-model: unknown preset '${o.preset}'; known: ${Object.keys(MODEL_PRESETS).join(', ')}`);
  process.exit(2);
}
const dtype = (o.dtype ?? preset.dtype) as RandomWeightDType;
if (!['f32', 'f16', 'bf16'].includes(dtype)) {
  console.error(`gen-model: --dtype must be f32, f16 or bf16, got '${dtype}'`);
  process.exit(2);
}
const seed = Number(o.seed);
if (!Number.isSafeInteger(seed) || seed < 0) {
  console.error(`gen-model: --seed must be a non-negative integer, got '${o.seed}'`);
  process.exit(2);
}
const t0 = Date.now();
const config = writeRandomModel(o.out, preset.config, {
  seed,
  dtype,
  tokenizer: o.tokenizer,
  maxShardBytes: o.maxShardBytes === undefined ? undefined : Number(o.maxShardBytes),
});
const seconds = ((Date.now() - t0) / 1000).toFixed(1);
console.log(
  `gen-model: wrote ${o.preset} (${config.architecture}, ${config.numLayers} layers, D=${config.hiddenSize}, V=` +
    `${config.vocabSize}, ${dtype}, seed ${seed}) to ${o.out} in ${seconds}s`,
);
