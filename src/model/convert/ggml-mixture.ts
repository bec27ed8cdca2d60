// Which ggml type each tensor of a `convert to-gguf --type X` file gets, by llama.cpp's rules for
// its file types (llama_tensor_get_type): 1-D tensors stay F32; the classifier (or the embedding when
// it is tied) gets Q6_K unless the file is Q8_0 (Q8_0 when its rows do not fit the base type's block);
// Q4_K_M / Q5_K_M give attn_v and ffn_down Q6_K on the layers use_more_bits picks; then a row length
// that is not a multiple of the type's block falls back (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
// and to F16 when even that does not fit).
import { GGML_BLOCK, type GgmlQuantType } from '../../runtime/ggml-format.js';

export type GgufQuantOption = 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k' | 'q4_k_m' | 'q5_k_m';
export const GGUF_QUANT_OPTIONS: readonly GgufQuantOption[] = [
  'q8_0',
  'q4_0',
  'q4_1',
  'q5_0',
  'q5_1',
  'q4_k',
  'q5_k',
  'q6_k',
  'q4_k_m',
  'q5_k_m',
];

/** llama_ftype values written as general.file_type (q4_k / q5_k: the *_S ids, the nearest mixtures). */
export const QUANT_FILE_TYPE: Record<GgufQuantOption, number> = {
  q4_0: 2,
  q4_1: 3,
  q8_0: 7,
  q5_0: 8,
  q5_1: 9,
  q4_k: 14,
  q4_k_m: 15,
  q5_k: 16,
  q5_k_m: 17,
  q6_k: 18,
};

export function baseType(opt: GgufQuantOption): GgmlQuantType {
  const t = opt.replace(/_m$/, '').toUpperCase();
  return t as GgmlQuantType;
}

/** llama.cpp's choice of layers that get more bits (first and last eighth, every third between). */
export function useMoreBits(layer: number, numLayers: number): boolean {
  const e = Math.floor(numLayers / 8);
  return layer < e || layer >= Math.floor((7 * numLayers) / 8) || (layer - e) % 3 === 2;
}

export interface TensorRole {
  /** GGUF tensor name (token_embd.weight, blk.3.attn_v.weight, output.weight, ...). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly numLayers: number;
  /** The file has no output.weight (the embedding doubles as the classifier). */
  readonly tied: boolean;
}

function fallback(t: GgmlQuantType, K: number): GgmlQuantType | 'F16' {
  if (K % GGML_BLOCK[t].blockElems === 0) return t;
  const next: GgmlQuantType | null = t === 'Q4_K' ? 'Q5_0' : t === 'Q5_K' ? 'Q5_1' : t === 'Q6_K' ? 'Q8_0' : null;
  return next !== null && K % GGML_BLOCK[next].blockElems === 0 ? next : 'F16';
}

/** The type of one tensor, or 'F32' for 1-D tensors (norms, rope factors). */
export function tensorType(opt: GgufQuantOption, role: TensorRole): GgmlQuantType | 'F16' | 'F32' {
  if (role.shape.length < 2) return 'F32';
  const base = baseType(opt);
  const K = role.shape[role.shape.length - 1]!;
  let t: GgmlQuantType = base;
  const isOutput = role.name === 'output.weight' || (role.tied && role.name === 'token_embd.weight');
  const layer = /^blk\.(\d+)\./.exec(role.name);
  if (isOutput) {
    t = K % GGML_BLOCK[base].blockElems !== 0 ? 'Q8_0' : base !== 'Q8_0' ? 'Q6_K' : 'Q8_0';
  } else if (
    layer &&
    (opt === 'q4_k_m' || opt === 'q5_k_m') &&
    (role.name.endsWith('attn_v.weight') || role.name.endsWith('ffn_down.weight'))
  ) {
    if (useMoreBits(Number(layer[1]), role.numLayers)) t = 'Q6_K';
  }
  return fallback(t, K);
}
