// `tokenmill convert llama2c <model.bin> <tokenizer.bin> <out-dir>` and `convert gguf <file.gguf>
// <out-dir>`: import foreign checkpoints as HF model directories that `generate --model` loads;
// `convert to-gguf <hf-dir> <out.gguf>` exports one for llama.cpp (a peer on the same weights).
// The converters live in model/convert; this file only wires arguments and reports.
import type { Command } from 'commander';
import { choiceArg } from './options.js';
import { GGUF_QUANT_OPTIONS, type GgufQuantOption } from '../model/convert/ggml-mixture.js';

interface ConvertSummary {
  readonly numTensors: number;
  readonly spec: { readonly numLayers: number; readonly hiddenSize: number; readonly vocabSize: number };
}

function report(kind: string, src: string, outDir: string, r: ConvertSummary): void {
  process.stderr.write(
    `[tokenmill] converted ${kind} ${src} -> ${outDir} (${r.numTensors} tensors, ${r.spec.numLayers} layers, D=` +
      `${r.spec.hiddenSize}, V=${r.spec.vocabSize})\n`,
  );
}

async function convertLlama2cCmd(modelBin: string, tokenizerBin: string, outDir: string): Promise<void> {
  const { convertLlama2c } = await import('../model/convert/llama2c.js');
  report('llama2.c', modelBin, outDir, convertLlama2c(modelBin, tokenizerBin, outDir));
}

async function convertGgufCmd(file: string, outDir: string): Promise<void> {
  const { convertGguf } = await import('../model/convert/gguf.js');
  const r = convertGguf(file, outDir);
  report('GGUF', file, outDir, r);
  if (!r.hasTokenizer)
    process.stderr.write('[tokenmill] warning: the GGUF file has no tokenizer; add tokenizer.json to the directory before generating\n');
}

async function toGgufCmd(
  hfDir: string,
  outFile: string,
  opts: { dtype: 'auto' | 'f32' | 'f16' | 'bf16'; type?: GgufQuantOption },
): Promise<void> {
  const { convertToGguf } = await import('../model/convert/to-gguf.js');
  const r = convertToGguf(hfDir, outFile, { dtype: opts.dtype, type: opts.type });
  if (opts.type !== undefined)
    process.stderr.write(
      `[tokenmill] tensor types: ${Object.entries(r.typeCounts)
        .map(([t, n]) => `${t} x${n}`)
        .join(', ')}\n`,
    );
  report(`HF (${r.fileType}, tokenizer ${r.tokenizer ?? 'none'}) to GGUF`, hfDir, outFile, r);
  for (const w of r.warnings) process.stderr.write(`[tokenmill] warning: ${w}\n`);
}

export function register(program: Command): void {
  const convert = program.command('convert').description('import llama2.c / GGUF checkpoints as model directories, or export one to GGUF');
  convert
    .command('llama2c')
    .description('llama2.c model.bin (legacy or v1) + tokenizer.bin -> HF model directory')
    .argument('<model.bin>', 'llama2.c checkpoint')
    .argument('<tokenizer.bin>', 'llama2.c tokenizer')
    .argument('<out-dir>', 'output directory')
    .option('--debug', 'print stack traces on errors')
    .action((modelBin: string, tokenizerBin: string, outDir: string) => convertLlama2cCmd(modelBin, tokenizerBin, outDir));
  convert
    .command('gguf')
    .description('GGUF file (F32/F16/BF16 tensors, embedded tokenizer) -> HF model directory')
    .argument('<file.gguf>', 'GGUF model')
    .argument('<out-dir>', 'output directory')
    .option('--debug', 'print stack traces on errors')
    .action((file: string, outDir: string) => convertGgufCmd(file, outDir));
  convert
    .command('to-gguf')
    .description('HF Llama model directory -> GGUF v3 (llama architecture, embedded tokenizer) for llama.cpp')
    .argument('<hf-dir>', 'model directory (config.json, *.safetensors, tokenizer.json)')
    .argument('<out.gguf>', 'output file')
    .option(
      '--dtype <dtype>',
      'matrix dtype: auto (as stored), f32, f16 or bf16; norms stay f32',
      choiceArg(['auto', 'f32', 'f16', 'bf16'] as const),
      'auto',
    )
    .option(
      '--type <type>',
      `quantize the matrices as llama.cpp's file type: ${GGUF_QUANT_OPTIONS.join(', ')} (overrides --dtype)`,
      choiceArg(GGUF_QUANT_OPTIONS),
    )
    .option('--debug', 'print stack traces on errors')
    .action((hfDir: string, outFile: string, opts: { dtype: 'auto' | 'f32' | 'f16' | 'bf16'; type?: GgufQuantOption }) =>
      toGgufCmd(hfDir, outFile, opts),
    );
}
