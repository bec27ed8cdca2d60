// Upload a GGUF file's tensors into backend tensors, kept in their stored type: F32/F16/BF16 matrices
// as float tensors, quantized matrices as raw ggml blocks (i8 [N, rowBytes], model/quantize.ts
// GgmlLinear), never an f32 copy of a quantized weight. Checks every tensor against the ModelConfig
// before uploading any: names (missing / unexpected), shapes, and types (gguf_unsupported_type naming
// the tensor). Offsets, sizes and bounds were checked by the reader.
// Where the backend maps the file (Backend.mapWeightFile: the CPU backend), a matrix used as stored
// becomes a tensor over the mapping itself: no heap copy, the pages are the page cache's. Only what must
// be transformed is copied: norms and biases (to computeDType), llama's un-permuted Q/K rows, and a
// gate/up pair not stored back to back (tokenmill fuses them into one [2I, D] matrix). Elsewhere
// (reference, CUDA, mmap off or failed) the file is read, one tensor in host memory at a time.
import type { Backend, MappedWeightFile, Tensor } from '../runtime/backend.js';
import { halfToF32, type FloatDType } from '../runtime/dtype.js';
import { checkSupportedGgmlType, type GgmlWeightType } from '../runtime/ggml-format.js';
import { TokenmillError } from '../util/errors.js';
import { fileSource, type ByteSource, type GgufTensorInfo } from './convert/gguf-reader.js';
import { ggufPermutesRotary, type GgufModelSource } from './gguf-model.js';
import type { EmbedWeight, LinearWeight } from './quantize.js';
import type { ModelConfig } from './types.js';
import { resolveWeightDType, type LayerWeights, type ModelWeights } from './weights.js';

interface Expected {
  readonly shape: readonly number[];
  readonly matrix: boolean;
  readonly rotaryHeads: number;
}

/** Every tensor this config needs in a GGUF file (ggml names), shapes row-major [out, in]. */
export function expectedGgufTensors(c: ModelConfig, permutes: boolean): Map<string, Expected> {
  const D = c.hiddenSize,
    q = c.numHeads * c.headDim,
    kv = c.numKvHeads * c.headDim,
    I = c.intermediateSize;
  const m = new Map<string, Expected>();
  const mat = (n: string, shape: number[], rotaryHeads = 0): void => {
    m.set(n, { shape, matrix: true, rotaryHeads: permutes ? rotaryHeads : 0 });
  };
  const vec = (n: string, len: number): void => {
    m.set(n, { shape: [len], matrix: false, rotaryHeads: 0 });
  };
  mat('token_embd.weight', [c.vocabSize, D]);
  vec('output_norm.weight', D);
  if (!c.tieWordEmbeddings) mat('output.weight', [c.vocabSize, D]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `blk.${l}.`;
    vec(`${p}attn_norm.weight`, D);
    mat(`${p}attn_q.weight`, [q, D], c.numHeads);
    mat(`${p}attn_k.weight`, [kv, D], c.numKvHeads);
    mat(`${p}attn_v.weight`, [kv, D]);
    if (c.attentionBias) {
      vec(`${p}attn_q.bias`, q);
      vec(`${p}attn_k.bias`, kv);
      vec(`${p}attn_v.bias`, kv);
    }
    if (c.qkNorm) {
      vec(`${p}attn_q_norm.weight`, c.headDim);
      vec(`${p}attn_k_norm.weight`, c.headDim);
    }
    mat(`${p}attn_output.weight`, [D, q]);
    vec(`${p}ffn_norm.weight`, D);
    mat(`${p}ffn_gate.weight`, [I, D]);
    mat(`${p}ffn_up.weight`, [I, D]);
    mat(`${p}ffn_down.weight`, [D, I]);
  }
  return m;
}

/** Validate names, shapes and types; returns each needed tensor's info and type. */
export function checkGgufTensors(s: GgufModelSource): Map<string, { info: GgufTensorInfo; type: GgmlWeightType; e: Expected }> {
  const g = s.gguf,
    file = s.file;
  const expected = expectedGgufTensors(s.config, ggufPermutesRotary(s.arch));
  for (const name of g.tensors.keys()) {
    if (!expected.has(name) && name !== 'rope_freqs.weight')
      throw new TokenmillError('gguf_invalid', `${file}: unexpected tensor '${name}' for a ${s.arch} model with this config`, {
        details: { file, tensor: name },
      });
  }
  const out = new Map<string, { info: GgufTensorInfo; type: GgmlWeightType; e: Expected }>();
  for (const [name, e] of expected) {
    const info = g.tensors.get(name);
    if (!info)
      throw new TokenmillError('tensor_missing', `${file}: GGUF file lacks '${name}' (needed by ${s.config.architecture})`, {
        details: { file, tensor: name },
      });
    if (info.shape.join(',') !== e.shape.join(',')) {
      throw new TokenmillError(
        'tensor_shape_mismatch',
        `${file}: tensor '${name}' has shape [${info.shape.join(', ')}], the metadata implies [${e.shape.join(', ')}]`,
        {
          details: { file, tensor: name, shape: info.shape, expected: e.shape },
        },
      );
    }
    const type = checkSupportedGgmlType(info.typeName, name, file);
    if (!e.matrix && type !== 'F32' && type !== 'F16' && type !== 'BF16') {
      throw new TokenmillError(
        'gguf_unsupported_type',
        `${file}: 1-D tensor '${name}' has type ${type}; norms and biases must be F32, F16 or BF16`,
        { details: { file, tensor: name, type } },
      );
    }
    out.set(name, { info, type, e });
  }
  for (let l = 0; l < s.config.numLayers; l++) {
    const [gt, ut] = [out.get(`blk.${l}.ffn_gate.weight`)!.type, out.get(`blk.${l}.ffn_up.weight`)!.type];
    if (gt !== ut)
      throw new TokenmillError(
        'gguf_unsupported_type',
        `${file}: blk.${l}.ffn_gate.weight (${gt}) and ffn_up.weight (${ut}) differ in type; tokenmill fuses them into one matrix`,
        { details: { file, tensor: `blk.${l}.ffn_gate.weight` } },
      );
  }
  return out;
}

/** Rows of each head from llama.cpp's interleaved pairs back to HF's halves: out[h, j*half + i] = in[h, 2i + j]. */
function permuteRows(src: Uint8Array, nHeads: number, headDim: number, rowBytes: number): Uint8Array {
  const out = new Uint8Array(src.byteLength);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * i + j) * rowBytes;
        out.set(src.subarray(from, from + rowBytes), (h * headDim + j * half + i) * rowBytes);
      }
    }
  }
  return out;
}

/** The mapped file, checked against the size its header was validated with; null when not mapped. */
function mapFile(s: GgufModelSource, backend: Backend): MappedWeightFile | null {
  const map = backend.mapWeightFile?.(s.file) ?? null;
  if (map !== null && map.sizeBytes !== s.gguf.fileSizeBytes) {
    map.close();
    throw new TokenmillError(
      'gguf_invalid',
      `${s.file}: the file has ${map.sizeBytes} bytes now, ${s.gguf.fileSizeBytes} when its header was read (changed since)`,
      { details: { file: s.file } },
    );
  }
  return map;
}

/** Upload every weight (checkGgufTensors first). On failure, frees what it allocated. */
export function uploadGgufWeights(s: GgufModelSource, backend: Backend): ModelWeights {
  const checked = checkGgufTensors(s);
  const c = s.config;
  const map = mapFile(s, backend);
  const src: ByteSource & { close(): void } =
    map !== null ? { sizeBytes: map.sizeBytes, read: (o, n) => map.bytes(o, n), close: () => map.close() } : fileSource(s.file);
  const allocated: Tensor[] = [];
  const bytesOf = (name: string): Uint8Array => {
    const { info, e } = checked.get(name)!;
    // Mapped bytes are read-only views (only read from here on). File reads of up to 1 MiB are views
    // into the source's chunk cache (copy them); larger ones are fresh.
    const raw = src.read(info.fileOffset, info.sizeBytes);
    const b = map !== null || raw.byteLength === raw.buffer.byteLength ? raw : raw.slice();
    return e.rotaryHeads > 0 ? permuteRows(b, e.rotaryHeads, c.headDim, info.sizeBytes / e.shape[0]!) : b;
  };
  /** File offset of names stored back to back and used as stored (no un-permuting), or null: they must be copied. */
  const inPlace = (names: readonly string[]): number | null => {
    if (map === null) return null;
    const start = checked.get(names[0]!)!.info.fileOffset;
    let at = start;
    for (const n of names) {
      const { info, e } = checked.get(n)!;
      if (e.rotaryHeads > 0 || info.fileOffset !== at) return null;
      at += info.sizeBytes;
    }
    return start;
  };
  const mapped = (shape: readonly number[], dtype: Parameters<Backend['alloc']>[1], offset: number): Tensor => {
    const t = map!.tensor(shape, dtype, offset);
    allocated.push(t);
    return t;
  };
  const floatValues = (name: string, b: Uint8Array): Float32Array | Uint16Array => {
    const t = checked.get(name)!.type;
    return t === 'F32'
      ? new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)
      : new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  };
  const alloc = (shape: readonly number[], dtype: Parameters<Backend['alloc']>[1]): Tensor => {
    const t = backend.alloc(shape, dtype);
    allocated.push(t);
    return t;
  };
  /** A float tensor of `dtype` from a stored F32/F16/BF16 tensor (f16/bf16 bits kept when dtypes agree). */
  const putFloat = (dst: Tensor, name: string, b: Uint8Array, offset = 0): void => {
    const stored = checked.get(name)!.type;
    const v = floatValues(name, b);
    const host = stored === 'F32' ? 'f32' : stored === 'F16' ? 'f16' : 'bf16';
    backend.upload(dst, host === 'f32' || host === dst.dtype ? v : halfToF32(v as Uint16Array, host as 'f16' | 'bf16'), offset);
  };
  const vec = (name: string): Tensor => {
    const t = alloc(checked.get(name)!.e.shape, backend.computeDType);
    putFloat(t, name, bytesOf(name));
    return t;
  };
  const opt = (name: string, on: boolean): Tensor | null => (on ? vec(name) : null);
  const matDType = (name: string): FloatDType => {
    const t = checked.get(name)!.type;
    return resolveWeightDType(t === 'F32' ? 'f32' : t === 'F16' ? 'f16' : 'bf16', backend.computeDType);
  };
  /** One matrix, or several stacked along N (gate + up), in their common stored type. */
  const mat = (...names: string[]): LinearWeight => {
    const { type } = checked.get(names[0]!)!;
    const K = checked.get(names[0]!)!.e.shape[1]!;
    const N = names.reduce((a, n) => a + checked.get(n)!.e.shape[0]!, 0);
    const at = inPlace(names);
    if (type === 'F32' || type === 'F16' || type === 'BF16') {
      const dtype = matDType(names[0]!);
      if (at !== null && dtype === (type === 'F32' ? 'f32' : type === 'F16' ? 'f16' : 'bf16')) return mapped([N, K], dtype, at);
      const t = alloc([N, K], dtype);
      let off = 0;
      for (const n of names) {
        putFloat(t, n, bytesOf(n), off);
        off += checked.get(n)!.e.shape[0]! * K;
      }
      return t;
    }
    if (backend.matmulGgml === undefined || backend.embeddingGgml === undefined) {
      throw new TokenmillError(
        'backend_unavailable',
        `${s.file}: backend '${backend.name}' cannot compute on ${type} weights (use --device cpu${
          backend.name === 'cuda' ? '; the CUDA kernels for them are off until they have passed on a device: TOKENMILL_CUDA_GGML=1' : ''
        })`,
        { details: { file: s.file, tensor: names[0] } },
      );
    }
    const rowBytes = checked.get(names[0]!)!.info.sizeBytes / checked.get(names[0]!)!.e.shape[0]!;
    if (at !== null) return { kind: 'ggml', type, blocks: mapped([N, rowBytes], 'i8', at), shape: [N, K] };
    const blocks = alloc([N, rowBytes], 'i8');
    let off = 0;
    for (const n of names) {
      const b = bytesOf(n);
      backend.upload(blocks, new Int8Array(b.buffer, b.byteOffset, b.byteLength), off);
      off += b.byteLength;
    }
    return { kind: 'ggml', type, blocks, shape: [N, K] };
  };
  try {
    const embed = mat('token_embd.weight') as EmbedWeight;
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      const p = `blk.${l}.`;
      layers.push({
        inputNorm: vec(`${p}attn_norm.weight`),
        qProj: mat(`${p}attn_q.weight`),
        kProj: mat(`${p}attn_k.weight`),
        vProj: mat(`${p}attn_v.weight`),
        qBias: opt(`${p}attn_q.bias`, c.attentionBias),
        kBias: opt(`${p}attn_k.bias`, c.attentionBias),
        vBias: opt(`${p}attn_v.bias`, c.attentionBias),
        qNorm: opt(`${p}attn_q_norm.weight`, c.qkNorm),
        kNorm: opt(`${p}attn_k_norm.weight`, c.qkNorm),
        oProj: mat(`${p}attn_output.weight`),
        postAttnNorm: vec(`${p}ffn_norm.weight`),
        gateUp: mat(`${p}ffn_gate.weight`, `${p}ffn_up.weight`),
        down: mat(`${p}ffn_down.weight`),
      });
    }
    const finalNorm = vec('output_norm.weight');
    const lmHead = c.tieWordEmbeddings ? (embed as LinearWeight) : mat('output.weight');
    return { embed, layers, finalNorm, lmHead };
  } catch (e) {
    for (const t of allocated) backend.free(t);
    throw e;
  } finally {
    src.close();
  }
}
