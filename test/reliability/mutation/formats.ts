// The formats the mutation suite corrupts: how to build a valid seeded base (a tiny random model
// written by the project's own writers), which file of it to mutate, how, and what the child loads.
// A mutant is the base with exactly one file replaced; the child must load it or fail typed.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertToGguf } from '../../../src/model/convert/to-gguf.js';
import { memorySource, parseGguf } from '../../../src/model/convert/gguf-reader.js';
import { MODEL_PRESETS } from '../../../src/model/model-presets.js';
import { GaussianStream } from '../../../src/model/prng.js';
import { writeRandomModel } from '../../../src/model/random-model.js';
import { HOSTILE_TEMPLATES, mutateBinary, mutateJsonText, mutateJsonValue, Rng, type Mutant } from './mutator.js';

export const FORMATS = ['safetensors', 'config', 'tokenizer', 'tokenizer-config', 'gguf', 'llama2c'] as const;
export type Format = (typeof FORMATS)[number];

/** What the child process is asked to open. */
export type LoadJob =
  | { readonly kind: 'dir'; readonly dir: string }
  | { readonly kind: 'gguf'; readonly file: string }
  | { readonly kind: 'llama2c'; readonly modelBin: string; readonly tokenizerBin: string; readonly outDir: string };

export interface Bases {
  readonly hfDir: string;
  readonly ggufFile: string;
  readonly l2cDir: string;
}

/** Build every base once under root: tiny Llama (synthetic tokenizer), its GGUF, a tiny llama2.c pair. */
export function writeBases(root: string): Bases {
  const hfDir = join(root, 'hf');
  writeRandomModel(hfDir, { ...MODEL_PRESETS['tiny-llama']!.config, max_position_embeddings: 64 }, { seed: 17 });
  const ggufFile = join(root, 'base.gguf');
  convertToGguf(hfDir, ggufFile);
  const l2cDir = join(root, 'l2c');
  mkdirSync(l2cDir, { recursive: true });
  writeLlama2c(join(l2cDir, 'model.bin'), join(l2cDir, 'tokenizer.bin'), 17);
  return { hfDir, ggufFile, l2cDir };
}

const L2C = { D: 16, F: 32, L: 2, H: 2, Hkv: 1, V: 40, S: 32 } as const;

/** A tiny legacy llama2.c checkpoint with small random weights, and a matching tokenizer.bin. */
function writeLlama2c(modelBin: string, tokenizerBin: string, seed: number): void {
  const { D, F, L, H, Hkv, V, S } = L2C;
  const kv = (D / H) * Hkv;
  const perLayer = D + D * D + 2 * kv * D + D * D + D + 3 * F * D;
  const numFloats = V * D + L * perLayer + D + S * (D / H); // legacy: rope tables, shared classifier
  const header = new DataView(new ArrayBuffer(28));
  [D, F, L, H, Hkv, V, S].forEach((d, i) => header.setInt32(4 * i, d, true));
  const g = new GaussianStream(seed);
  const body = Float32Array.from({ length: numFloats }, () => g.next() * 0.2 + 0.05);
  writeFileSync(modelBin, Buffer.concat([Buffer.from(header.buffer), Buffer.from(body.buffer)]));
  const pieces = [
    '<unk>',
    '\n<s>\n',
    '\n</s>\n',
    ...Array.from({ length: V - 3 }, (_, i) => (i < 26 ? String.fromCharCode(97 + i) : ` ${String.fromCharCode(97 + i - 26)}`)),
  ];
  const parts = [Buffer.from(Int32Array.of(8).buffer)];
  for (const p of pieces)
    parts.push(Buffer.from(Float32Array.of(-1).buffer), Buffer.from(Int32Array.of(Buffer.byteLength(p)).buffer), Buffer.from(p));
  writeFileSync(tokenizerBin, Buffer.concat(parts));
}

const CONFIG_HOT = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'vocab_size',
  'max_position_embeddings',
  'head_dim',
  'rope_theta',
  'rope_scaling',
  'rms_norm_eps',
  'tie_word_embeddings',
  'architectures',
  'model_type',
  'torch_dtype',
  'eos_token_id',
  'bos_token_id',
  'sliding_window',
  '0',
];
const TOKENIZER_HOT = [
  'type',
  'vocab',
  'merges',
  'added_tokens',
  'id',
  'content',
  'decoder',
  'pre_tokenizer',
  'normalizer',
  'post_processor',
  'special',
];
const TOKCFG_HOT = [
  'chat_template',
  'bos_token',
  'eos_token',
  'add_bos_token',
  'model_max_length',
  'pad_token',
  'unk_token',
  'added_tokens_decoder',
];
const ST_HOT = ['dtype', 'shape', 'data_offsets', '0', '1', '__metadata__'];

function jsonMutant(bytes: Uint8Array, rng: Rng, hot: readonly string[]): Mutant {
  const text = Buffer.from(bytes).toString('utf8');
  if (rng.chance(0.15)) {
    const m = mutateJsonText(text, rng);
    return { bytes: Buffer.from(m.text, 'utf8'), what: m.what };
  }
  const m = mutateJsonValue(JSON.parse(text), rng, hot);
  return { bytes: Buffer.from(JSON.stringify(m.doc), 'utf8'), what: m.what };
}

/** safetensors: a rewritten header (value mutations, length prefix kept honest), a lying prefix, or byte damage. */
function safetensorsMutant(bytes: Uint8Array, rng: Rng): Mutant {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  const r = rng.int(10);
  if (r < 5) {
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + hlen)).toString('utf8'));
    const m = mutateJsonValue(header, rng, ST_HOT);
    const json = Buffer.from(JSON.stringify(m.doc), 'utf8');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    // Keep the data section where it was when the new header is shorter (pad with spaces, as writers do).
    const padded = json.length < hlen ? Buffer.concat([json, Buffer.alloc(hlen - json.length, 0x20)]) : json;
    if (json.length < hlen) prefix.writeBigUInt64LE(BigInt(hlen));
    return { bytes: Buffer.concat([prefix, padded, bytes.subarray(8 + hlen)]), what: `header ${m.what}` };
  }
  if (r === 5) {
    const out = bytes.slice();
    const v = rng.pick([0n, 1n, BigInt(hlen - 1), BigInt(hlen + 1), BigInt(bytes.length), 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n]);
    new DataView(out.buffer).setBigUint64(0, v, true);
    return { bytes: out, what: `header length := ${v}` };
  }
  return mutateBinary(bytes, rng, 8 + hlen);
}

function templateMutant(bytes: Uint8Array, rng: Rng): Mutant {
  if (rng.chance(0.4)) {
    const cfg = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    const [name, tpl] = rng.pick(HOSTILE_TEMPLATES);
    cfg.chat_template = tpl;
    return { bytes: Buffer.from(JSON.stringify(cfg), 'utf8'), what: `chat_template := ${name}` };
  }
  return jsonMutant(bytes, rng, TOKCFG_HOT);
}

export interface PreparedMutant {
  readonly job: LoadJob;
  /** The mutated file's name: a typed error must name it. */
  readonly file: string;
  readonly what: string;
}

/** Write mutant #index of a format (seeded by seed and index) under dir and say how to load it. */
export function prepareMutant(bases: Bases, format: Format, seed: number, index: number, dir: string): PreparedMutant {
  const rng = new Rng((seed * 1_000_003 + index * 7919 + FORMATS.indexOf(format) * 104_729) >>> 0);
  mkdirSync(dir, { recursive: true });
  const hf = (file: string, mutate: (b: Uint8Array) => Mutant): PreparedMutant => {
    cpSync(bases.hfDir, dir, { recursive: true });
    const m = mutate(readFileSync(join(bases.hfDir, file)));
    writeFileSync(join(dir, file), m.bytes);
    return { job: { kind: 'dir', dir }, file, what: m.what };
  };
  switch (format) {
    case 'safetensors':
      return hf('model.safetensors', (b) => safetensorsMutant(b, rng));
    case 'config':
      return hf('config.json', (b) => jsonMutant(b, rng, CONFIG_HOT));
    case 'tokenizer':
      return hf('tokenizer.json', (b) => jsonMutant(b, rng, TOKENIZER_HOT));
    case 'tokenizer-config':
      return hf('tokenizer_config.json', (b) => templateMutant(b, rng));
    case 'gguf': {
      const bytes = readFileSync(bases.ggufFile);
      const m = mutateBinary(bytes, rng, ggufHeaderEnd(bytes));
      const file = join(dir, 'model.gguf');
      writeFileSync(file, m.bytes);
      return { job: { kind: 'gguf', file }, file: 'model.gguf', what: m.what };
    }
    case 'llama2c': {
      const which = rng.chance(0.7) ? 'model.bin' : 'tokenizer.bin';
      cpSync(bases.l2cDir, dir, { recursive: true });
      const bytes = readFileSync(join(bases.l2cDir, which));
      const m = mutateBinary(bytes, rng, which === 'model.bin' ? 28 : bytes.length);
      writeFileSync(join(dir, which), m.bytes);
      const job: LoadJob = {
        kind: 'llama2c',
        modelBin: join(dir, 'model.bin'),
        tokenizerBin: join(dir, 'tokenizer.bin'),
        outDir: join(dir, 'hf'),
      };
      return { job, file: which, what: m.what };
    }
  }
}

/** Where the GGUF tensor data starts (the metadata and tensor infos, where lengths live, come before). */
function ggufHeaderEnd(bytes: Uint8Array): number {
  return parseGguf(memorySource(bytes)).dataOffset;
}
