// `tokenmill random-model OUT_DIR (--preset NAME | --config FILE) [--tokenizer DIR]`: a seeded
// random-weight HF model directory from a preset or a config.json, with a real tokenizer (vocab size,
// bos/eos ids and chat template from it) or the synthetic one. model/random-model.ts does the work.
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { TokenmillError } from '../util/errors.js';
import { choiceArg, positiveIntArg, intArg } from './options.js';

interface RandomModelCliOptions {
  readonly preset?: string;
  readonly config?: string;
  readonly tokenizer?: string;
  readonly chatTemplate?: string;
  readonly vocabSize?: number;
  readonly dtype?: 'f32' | 'f16' | 'bf16';
  readonly seed: number;
  readonly init: 'default' | 'well-conditioned';
  readonly maxShardBytes?: number;
}

function readConfigFile(path: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file_not_found' : 'config_invalid';
    throw new TokenmillError(code, `--config ${path}: ${(e as Error).message}`, { param: '--config' });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new TokenmillError('config_invalid', `--config ${path}: must hold a JSON object`, { param: '--config' });
  return raw as Record<string, unknown>;
}

async function randomModelCmd(outDir: string, o: RandomModelCliOptions): Promise<void> {
  const [{ MODEL_PRESETS }, { writeRandomModel }, { resolveChatTemplate }] = await Promise.all([
    import('../model/model-presets.js'),
    import('../model/random-model.js'),
    import('../model/builtin-chat-templates.js'),
  ]);
  if ((o.preset === undefined) === (o.config === undefined))
    throw new TokenmillError('invalid_argument', 'give exactly one of --preset NAME or --config FILE', { param: '--preset' });
  if (o.chatTemplate !== undefined && o.tokenizer === undefined)
    throw new TokenmillError(
      'invalid_argument',
      '--chat-template needs --tokenizer (the synthetic tokenizer has its own ChatML template)',
      { param: '--chat-template' },
    );
  if (o.vocabSize !== undefined && o.tokenizer === undefined)
    throw new TokenmillError('invalid_argument', '--vocab-size needs --tokenizer (without one, set vocab_size in --config)', {
      param: '--vocab-size',
    });
  let hfConfig: Record<string, unknown>;
  let dtype = o.dtype;
  if (o.preset !== undefined) {
    const preset = MODEL_PRESETS[o.preset];
    if (preset === undefined)
      throw new TokenmillError('invalid_argument', `--preset ${o.preset}: one of ${Object.keys(MODEL_PRESETS).join(', ')}`, {
        param: '--preset',
      });
    hfConfig = { ...preset.config };
    // A preset's vocabulary (512 or 32000) is a placeholder when a real tokenizer decides it.
    if (o.tokenizer !== undefined) delete hfConfig.vocab_size;
    dtype ??= preset.dtype;
  } else {
    hfConfig = readConfigFile(o.config!);
  }
  const t0 = Date.now();
  const config = writeRandomModel(outDir, hfConfig, {
    seed: o.seed,
    dtype: dtype ?? 'f32',
    init: o.init,
    maxShardBytes: o.maxShardBytes,
    tokenizerDir: o.tokenizer,
    vocabSize: o.vocabSize,
    chatTemplate: o.chatTemplate === undefined ? undefined : resolveChatTemplate(o.chatTemplate).template,
  });
  const gen = JSON.parse(readFileSync(`${outDir}/generation_config.json`, 'utf8')) as { bos_token_id: unknown; eos_token_id: unknown };
  process.stderr.write(
    `[tokenmill] wrote random ${config.architecture} (${config.numLayers} layers, D=${config.hiddenSize}, V=${config.vocabSize}, ` +
      `${dtype ?? 'f32'}, seed ${o.seed}) ` +
      `with ${o.tokenizer === undefined ? 'the synthetic tokenizer' : `the tokenizer of ${o.tokenizer}`} to ${outDir} in ` +
      `${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
      `bos ${JSON.stringify(gen.bos_token_id)}, eos ${JSON.stringify(gen.eos_token_id)}\n`,
  );
}

export function register(program: Command): void {
  program
    .command('random-model')
    .description('write a seeded random-weight model directory from a preset or config.json, with a real or synthetic tokenizer')
    .argument('<out-dir>', 'output directory')
    .option('--preset <name>', 'a named shape (src/model/model-presets.ts), e.g. tiny-llama3, tiny-qwen3, stories15M')
    .option('--config <file>', 'an HF config.json instead of a preset')
    .option(
      '--tokenizer <dir>',
      'tokenizer directory (tokenizer.json [+ tokenizer_config.json], or a llama2.c tokenizer.bin); default: a synthetic byte-level BPE',
    )
    .option('--chat-template <file|name>', 'with --tokenizer: replace its chat template (a Jinja file, or chatml, llama2, llama3, plain)')
    .option('--vocab-size <n>', "with --tokenizer: vocab_size (>= the tokenizer's; default max(config's, tokenizer's))", positiveIntArg)
    .option('--dtype <dtype>', "stored dtype (default: the preset's, else f32)", choiceArg(['f32', 'f16', 'bf16'] as const))
    .option('--seed <n>', 'PRNG seed (same seed, shape and dtype: byte-identical files)', intArg, 0)
    .option(
      '--init <init>',
      'weight init: default, or well-conditioned (deep models stay peaked)',
      choiceArg(['default', 'well-conditioned'] as const),
      'default',
    )
    .option('--max-shard-bytes <n>', 'split the weights into shards of at most this many bytes', positiveIntArg)
    .option('--debug', 'print stack traces on errors')
    .action((outDir: string, o: RandomModelCliOptions) => randomModelCmd(outDir, o));
}
