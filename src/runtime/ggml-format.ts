// The ggml tensor types: ids, block sizes and byte layouts as GGUF files store them, and which of
// them tokenmill computes on. Knows sizes only; decoding is runtime/reference/ggml-dequant.ts (the
// spec) and native/cpu/quant_*.cpp. A quantized weight lives in a backend as an 'i8' tensor of raw
// bytes shaped [N, rowBytes], each row ggmlRowBytes(type, K) bytes of consecutive blocks.
import { TokenmillError } from '../util/errors.js';

/** Every ggml type id a GGUF file may name: [name, elements per block, bytes per block]. */
export const GGML_TYPES: Readonly<Record<number, readonly [string, number, number]>> = {
  0: ['F32', 1, 4],
  1: ['F16', 1, 2],
  2: ['Q4_0', 32, 18],
  3: ['Q4_1', 32, 20],
  6: ['Q5_0', 32, 22],
  7: ['Q5_1', 32, 24],
  8: ['Q8_0', 32, 34],
  9: ['Q8_1', 32, 36],
  10: ['Q2_K', 256, 84],
  11: ['Q3_K', 256, 110],
  12: ['Q4_K', 256, 144],
  13: ['Q5_K', 256, 176],
  14: ['Q6_K', 256, 210],
  15: ['Q8_K', 256, 292],
  16: ['IQ2_XXS', 256, 66],
  17: ['IQ2_XS', 256, 74],
  18: ['IQ3_XXS', 256, 98],
  19: ['IQ1_S', 256, 50],
  20: ['IQ4_NL', 32, 18],
  21: ['IQ3_S', 256, 110],
  22: ['IQ2_S', 256, 82],
  23: ['IQ4_XS', 256, 136],
  24: ['I8', 1, 1],
  25: ['I16', 1, 2],
  26: ['I32', 1, 4],
  27: ['I64', 1, 8],
  28: ['F64', 1, 8],
  29: ['IQ1_M', 256, 56],
  30: ['BF16', 1, 2],
  34: ['TQ1_0', 256, 54],
  35: ['TQ2_0', 256, 66],
};

/** The block-quantized types tokenmill computes on directly (Backend.matmulGgml). */
export type GgmlQuantType = 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';
export const GGML_QUANT_TYPES: readonly GgmlQuantType[] = ['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'];
/** Every type a weight may have: the quantized ones plus the float ones. */
export type GgmlWeightType = GgmlQuantType | 'F32' | 'F16' | 'BF16';

export interface GgmlBlockFormat {
  readonly id: number;
  /** Weights per block (32 for the legacy formats, 256 = QK_K for the K formats). */
  readonly blockElems: number;
  readonly blockBytes: number;
  /** Code shared with the native kernels (native/cpu/quant_common.h GgmlType). */
  readonly code: number;
}

export const GGML_BLOCK: Readonly<Record<GgmlQuantType, GgmlBlockFormat>> = {
  Q4_0: { id: 2, blockElems: 32, blockBytes: 18, code: 2 },
  Q4_1: { id: 3, blockElems: 32, blockBytes: 20, code: 3 },
  Q5_0: { id: 6, blockElems: 32, blockBytes: 22, code: 6 },
  Q5_1: { id: 7, blockElems: 32, blockBytes: 24, code: 7 },
  Q8_0: { id: 8, blockElems: 32, blockBytes: 34, code: 8 },
  Q4_K: { id: 12, blockElems: 256, blockBytes: 144, code: 12 },
  Q5_K: { id: 13, blockElems: 256, blockBytes: 176, code: 13 },
  Q6_K: { id: 14, blockElems: 256, blockBytes: 210, code: 14 },
};

export function isGgmlQuantType(name: string): name is GgmlQuantType {
  return (GGML_QUANT_TYPES as readonly string[]).includes(name);
}

/** Bytes of one row of K weights (K a multiple of the block). */
export function ggmlRowBytes(type: GgmlQuantType, K: number): number {
  const f = GGML_BLOCK[type];
  if (K % f.blockElems !== 0) throw new TokenmillError('invalid_argument', `${type}: row length ${K} is not a multiple of ${f.blockElems}`);
  return (K / f.blockElems) * f.blockBytes;
}

/** Row length K of a [N, rowBytes] byte tensor of this type. */
export function ggmlRowElems(type: GgmlQuantType, rowBytes: number): number {
  const f = GGML_BLOCK[type];
  if (rowBytes % f.blockBytes !== 0)
    throw new TokenmillError('invalid_argument', `${type}: row of ${rowBytes} bytes is not a whole number of ${f.blockBytes}-byte blocks`);
  return (rowBytes / f.blockBytes) * f.blockElems;
}

/**
 * The type a tensor must have for tokenmill to run it: the typed error for the rest (IQ*, Q2_K,
 * Q3_K, Q8_K, TQ*, integer types), naming the type and the tensor.
 */
export function checkSupportedGgmlType(typeName: string, tensor: string, file: string): GgmlWeightType {
  if (typeName === 'F32' || typeName === 'F16' || typeName === 'BF16' || isGgmlQuantType(typeName)) return typeName;
  throw new TokenmillError(
    'gguf_unsupported_type',
    `${file}: tensor '${tensor}' has ggml type ${typeName}, which tokenmill does not support (supported: F32, F16, BF16, ` +
      `${GGML_QUANT_TYPES.join(', ')})`,
    {
      details: { file, tensor, type: typeName },
    },
  );
}
