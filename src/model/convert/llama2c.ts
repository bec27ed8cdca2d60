// convertLlama2c: a llama2.c checkpoint (legacy or v1 "ak42" export, fp32) + tokenizer.bin -> a
// standard HF Llama directory (f32 safetensors with wq/wk rows permuted to rotate_half layout).
// Validates header and exact file size (llama2c_invalid); reads one tensor at a time.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { TokenmillError } from '../../util/errors.js';
import type { TensorToWrite } from '../safetensors.js';
import { layerName, permuteRotaryRows, writeHfLlamaDir, writeTokenizerFiles, type HfLlamaSpec } from './hf-llama-writer.js';
import { parseLlama2cTokenizer } from './llama2c-tokenizer.js';
import { buildSpmTokenizerConfig, buildSpmTokenizerJson } from './spm-tokenizer.js';

export const LLAMA2C_V1_MAGIC = 0x616b3432;
const V1_HEADER_BYTES = 256;
const LEGACY_HEADER_BYTES = 28;

export interface Llama2cHeader {
  readonly format: 'legacy' | 'v1';
  readonly dim: number;
  readonly hiddenDim: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly sharedClassifier: boolean;
  readonly headerBytes: number;
}

export interface Llama2cConversion {
  readonly header: Llama2cHeader;
  readonly spec: HfLlamaSpec;
  readonly numTensors: number;
}

function bad(file: string, why: string): TokenmillError {
  return new TokenmillError('llama2c_invalid', `${file}: ${why}`, { details: { file } });
}

/** Parse and sanity-check the header (first 256 bytes or fewer). */
export function parseLlama2cHeader(head: Uint8Array, file = 'model.bin'): Llama2cHeader {
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.byteLength < LEGACY_HEADER_BYTES) throw bad(file, 'shorter than a llama2.c header');
  const magic = dv.getUint32(0, true);
  let h: Llama2cHeader;
  if (magic === LLAMA2C_V1_MAGIC) {
    if (head.byteLength < V1_HEADER_BYTES) throw bad(file, 'shorter than the 256-byte v1 header');
    const version = dv.getInt32(4, true);
    if (version !== 1) throw bad(file, `llama2.c export version ${version} is not supported (only legacy and v1 fp32)`);
    const f = (i: number) => dv.getInt32(8 + 4 * i, true);
    h = {
      format: 'v1',
      dim: f(0),
      hiddenDim: f(1),
      numLayers: f(2),
      numHeads: f(3),
      numKvHeads: f(4),
      vocabSize: f(5),
      seqLen: f(6),
      sharedClassifier: dv.getUint8(36) !== 0,
      headerBytes: V1_HEADER_BYTES,
    };
    if (h.vocabSize <= 0) throw bad(file, `vocab_size ${h.vocabSize} must be positive in a v1 header`);
  } else {
    const f = (i: number) => dv.getInt32(4 * i, true);
    const v = f(5);
    h = {
      format: 'legacy',
      dim: f(0),
      hiddenDim: f(1),
      numLayers: f(2),
      numHeads: f(3),
      numKvHeads: f(4),
      vocabSize: Math.abs(v),
      seqLen: f(6),
      sharedClassifier: v > 0,
      headerBytes: LEGACY_HEADER_BYTES,
    };
  }
  const sane = (x: number, max: number) => Number.isInteger(x) && x > 0 && x <= max;
  if (
    !sane(h.dim, 1 << 16) ||
    !sane(h.hiddenDim, 1 << 18) ||
    !sane(h.numLayers, 1024) ||
    !sane(h.numHeads, 1024) ||
    !sane(h.numKvHeads, 1024) ||
    !sane(h.vocabSize, 1 << 22) ||
    !sane(h.seqLen, 1 << 22)
  ) {
    throw bad(file, `header values out of range: ${JSON.stringify(h)}`);
  }
  if (h.dim % h.numHeads !== 0 || h.numHeads % h.numKvHeads !== 0 || (h.dim / h.numHeads) % 2 !== 0) {
    throw bad(
      file,
      `dim ${h.dim}, n_heads ${h.numHeads}, n_kv_heads ${h.numKvHeads}: heads must divide dim (even head size) and kv heads must ` +
        'divide heads',
    );
  }
  return h;
}

interface Block {
  readonly key: string;
  readonly count: number;
  readonly perLayer: boolean;
  readonly shape: readonly number[];
}

/** The stacked arrays in file order, as float counts (per layer when perLayer). */
function layout(h: Llama2cHeader): Block[] {
  const { dim: D, hiddenDim: F, vocabSize: V } = h;
  const headDim = D / h.numHeads;
  const kvDim = headDim * h.numKvHeads;
  const b = (key: string, shape: number[], perLayer: boolean): Block => ({ key, shape, perLayer, count: shape.reduce((a, x) => a * x, 1) });
  const emb = b('embed', [V, D], false);
  const mats = [b('wq', [D, D], true), b('wk', [kvDim, D], true), b('wv', [kvDim, D], true), b('wo', [D, D], true)];
  const ffn = [b('w1', [F, D], true), b('w2', [D, F], true), b('w3', [F, D], true)];
  const cls = h.sharedClassifier ? [] : [b('lm_head', [V, D], false)];
  if (h.format === 'v1') {
    return [b('attnNorm', [D], true), b('ffnNorm', [D], true), b('norm', [D], false), emb, ...mats, ...ffn, ...cls];
  }
  const rope = b('rope_tables', [2 * h.seqLen * (headDim / 2)], false);
  return [emb, b('attnNorm', [D], true), ...mats, b('ffnNorm', [D], true), ...ffn, b('norm', [D], false), rope, ...cls];
}

function hfName(key: string, layer: number): string {
  if (key === 'embed') return 'model.embed_tokens.weight';
  if (key === 'norm') return 'model.norm.weight';
  if (key === 'lm_head') return 'lm_head.weight';
  return layerName(layer, key as 'wq');
}

function readFloats(fd: number, offsetBytes: number, count: number): Float32Array {
  const out = new Float32Array(count);
  const bytes = new Uint8Array(out.buffer);
  let done = 0;
  while (done < bytes.byteLength) {
    const n = readSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30), offsetBytes + done);
    if (n <= 0) throw new TokenmillError('io_error', `short read at byte ${offsetBytes + done}`);
    done += n;
  }
  return out;
}

/** Convert modelBin (+ tokenizerBin, or null to skip the tokenizer) into an HF directory at outDir. */
export function convertLlama2c(modelBin: string, tokenizerBin: string | null, outDir: string): Llama2cConversion {
  let fd: number;
  try {
    fd = openSync(modelBin, 'r');
  } catch (e) {
    throw new TokenmillError('file_not_found', `cannot open ${modelBin}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const sizeBytes = fstatSync(fd).size;
    const head = new Uint8Array(Math.min(V1_HEADER_BYTES, sizeBytes));
    readSync(fd, head, 0, head.byteLength, 0);
    const h = parseLlama2cHeader(head, modelBin);
    const blocks = layout(h);
    let offset = h.headerBytes;
    const tensors: TensorToWrite[] = [];
    const headDim = h.dim / h.numHeads;
    for (const blk of blocks) {
      const numLayers = blk.perLayer ? h.numLayers : 1;
      for (let l = 0; l < numLayers; l++) {
        const at = offset + l * blk.count * 4;
        if (blk.key !== 'rope_tables') {
          const permuteHeads = blk.key === 'wq' ? h.numHeads : blk.key === 'wk' ? h.numKvHeads : 0;
          tensors.push({
            name: hfName(blk.key, l),
            dtype: 'F32',
            shape: blk.shape,
            data: () => {
              const w = readFloats(fd, at, blk.count);
              return permuteHeads ? permuteRotaryRows(w, permuteHeads, headDim, h.dim) : w;
            },
          });
        }
      }
      offset += numLayers * blk.count * 4;
    }
    if (offset !== sizeBytes) {
      throw bad(
        modelBin,
        `size is ${sizeBytes} bytes but the ${h.format} header implies ${offset} (wrong format, truncated, or not fp32?)`,
      );
    }
    const spec: HfLlamaSpec = {
      hiddenSize: h.dim,
      intermediateSize: h.hiddenDim,
      numLayers: h.numLayers,
      numHeads: h.numHeads,
      numKvHeads: h.numKvHeads,
      headDim,
      vocabSize: h.vocabSize,
      maxPositionEmbeddings: h.seqLen,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: h.sharedClassifier,
      torchDtype: 'float32',
      bosTokenId: 1,
      // EOS is 2, but llama2.c models end a story by sampling BOS (run.c stops there): both stop.
      eosTokenIds: [2, 1],
    };
    if (tokenizerBin !== null) writeLlama2cTokenizer(tokenizerBin, h.vocabSize, h.seqLen, outDir);
    writeHfLlamaDir(outDir, spec, tensors, { source: `llama2.c ${h.format}` });
    return { header: h, spec, numTensors: tensors.length };
  } finally {
    closeSync(fd);
  }
}

/** tokenizer.bin -> tokenizer.json + tokenizer_config.json (LlamaTokenizerFast style, BOS added). */
export function writeLlama2cTokenizer(tokenizerBin: string, vocabSize: number, modelMaxLength: number, outDir: string): void {
  let buf: Uint8Array;
  try {
    buf = readFileSync(tokenizerBin);
  } catch (e) {
    throw new TokenmillError('file_not_found', `cannot read ${tokenizerBin}: ${(e as Error).message}`, { cause: e });
  }
  const pieces = parseLlama2cTokenizer(buf, vocabSize, tokenizerBin);
  const ids = { unkId: 0, bosId: 1, eosId: 2, addBos: true };
  writeTokenizerFiles(outDir, buildSpmTokenizerJson(pieces, ids), buildSpmTokenizerConfig(pieces, { ...ids, modelMaxLength }));
}
