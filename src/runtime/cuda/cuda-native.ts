// Types of the CUDA addon (build/Release/tokenmill_cuda.node, built by scripts/build-cuda.mjs where
// nvcc exists) and its ABI check; runtime/native.ts loads the binary. Never throws: a missing or
// broken binary is a reason string. TOKENMILL_CUDA_ADDON overrides the path (bundled GPU suite).
import { loadCudaAddonBinary } from '../native.js';

export interface CudaProbeRaw {
  ok: boolean;
  reason: string;
  driverVersion: number;
  runtimeVersion: number;
  cublasLt: boolean;
  cublasLtReason: string;
  devices: { name: string; computeCapability: string; totalMemoryBytes: number; freeMemoryBytes: number; bf16: boolean; numSms: number; l2Bytes: number }[];
}

/** One device context: a stream, cuBLASLt handle, block cache. Pointers are plain numbers. Every method throws Error('cuda_error: ...' | 'out_of_memory: ...'). */
export interface CudaContextNative {
  malloc(sizeBytes: number): number;
  free(ptr: number): void;
  trim(): void;
  memInfo(): [freeBytes: number, totalBytes: number];
  /** Float32Array into f16/bf16 converts; any other typed array is copied as raw bytes. */
  upload(ptr: number, dtype: number, src: Float32Array | Uint16Array | Int32Array | Int8Array, dstOffsetElems: number): void;
  /** numel 0: resolves once all enqueued work is done. */
  read(ptr: number, dtype: number, numel: number): Promise<Float32Array | Int32Array>;
  synchronize(blocking: boolean): void;
  dispose(): void;
  gather(out: number, dtOut: number, src: number, dtSrc: number, idx: number, numRows: number, numSrcRows: number, cols: number): void;
  convert(out: number, dtOut: number, src: number, dtSrc: number, n: number): void;
  rmsnorm(out: number, x: number, w: number, dt: number, dtW: number, rows: number, cols: number, eps: number): void;
  addRmsnorm(out: number, residual: number, x: number, w: number, dt: number, dtW: number, rows: number, cols: number, eps: number): void;
  rope(q: number, k: number, dt: number, positions: number, invFreq: number, numTokens: number, numHeads: number, numKvHeads: number, headDim: number): void;
  kvWrite(kCache: number, vCache: number, k: number, v: number, dt: number, slots: number, numTokens: number, rowElems: number, numSlots: number): void;
  /** Present in addons built from the fused-QKV commit on (optional so older binaries still load). */
  ropeKvWriteQkv?(qOut: number, qkv: number, kCache: number, vCache: number, dt: number, positions: number, invFreq: number, slots: number,
    numTokens: number, numHeads: number, numKvHeads: number, headDim: number, numSlots: number): void;
  attention(out: number, q: number, kCache: number, vCache: number, queryStartLoc: number, seqLens: number, blockTables: number, dt: number,
    numTokens: number, numSeqs: number, numHeads: number, numKvHeads: number, headDim: number, blockSize: number, maxBlocksPerSeq: number,
    maxQueryLen: number, maxSeqLen: number, slidingWindow: number, numCacheBlocks: number, scale: number, dynamicSplits?: number): void;
  siluMul(out: number, gateUp: number, dt: number, rows: number, inter: number): void;
  add(out: number, a: number, b: number, dt: number, n: number): void;
  /** mode 0 auto, 1 own kernels only, 2 cuBLASLt only. Returns the path that ran. */
  matmul(out: number, dtOut: number, x: number, dtX: number, w: number, dtW: number, bias: number, dtBias: number,
    numTokens: number, n: number, k: number, mode: number): 'gemv' | 'tiled' | 'cublaslt';
  /** Weight-only int8 (gemm_q8.cu); optional so that older binaries still load. Returns the path that ran. */
  matmulQ8?(out: number, dtOut: number, x: number, dtX: number, wq: number, scales: number, bias: number, dtBias: number,
    numTokens: number, n: number, k: number): 'gemv_q8' | 'tiled_q8';
  /** out[n, k] = wq[n, k] * scales[n] in dtOut. */
  dequantQ8?(out: number, dtOut: number, wq: number, scales: number, n: number, k: number): void;
  argmax(out: number, logits: number, rows: number, vocab: number): void;
  sample(out: number, logits: number, scratch: number, counts: number, params: number, seeds: number, history: number,
    numGenerated: number, historyLens: number, rows: number, vocab: number, maxHistory: number): void;
  info(): { cublasLt: boolean; numSms: number; device: number; cachedBytes: number };
}

export interface CudaAddon {
  readonly abiVersion: number;
  probe(): CudaProbeRaw;
  CudaContext: new (deviceIndex: number, attentionWorkspaceBytes: number) => CudaContextNative;
}

let loaded: { addon: CudaAddon | null; reason: string } | null = null;

export function loadCudaAddon(): { addon: CudaAddon | null; reason: string } {
  if (loaded !== null) return loaded;
  const bin = loadCudaAddonBinary();
  if (bin.addon === null) {
    loaded = { addon: null, reason: bin.reason };
    return loaded;
  }
  const addon = bin.addon as CudaAddon;
  loaded = addon.abiVersion === 1 ? { addon, reason: bin.reason } : { addon: null, reason: `${bin.reason}: ABI version ${addon.abiVersion}, expected 1 (rebuild it)` };
  return loaded;
}
