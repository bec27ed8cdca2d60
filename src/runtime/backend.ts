// The Backend contract: every op a Llama-family forward pass needs, designed for a GPU from day one.
// Tensors are opaque handles owned by the backend; ops enqueue work and return at once (a backend
// may run them synchronously, but callers must not depend on that); only read*() crosses to the
// host. Ops write into caller-provided outputs so that a forward pass allocates nothing per op.
// Implementations: runtime/reference (the spec, plain TS), runtime/cpu (C++ addon), runtime/cuda.

import { invariant } from '../util/invariant.js';
import type { DType } from './dtype.js';
import type { GgmlQuantType } from './ggml-format.js';

/** An opaque tensor handle. Row-major, contiguous. Never index it from TypeScript. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Number of elements (product of shape). */
  readonly numel: number;
  /** Name of the backend that owns it; ops reject foreign tensors. */
  readonly backend: string;
}

/** Host data accepted by upload(): f32 values, raw f16/bf16 bits, int32, or int8 (i8 tensors). */
export type HostData = Float32Array | Uint16Array | Int32Array | Int8Array;

export interface ReadOptions {
  /**
   * The caller has host work to do while the read is pending (grammar masks): a backend that runs
   * small queues synchronously on the JS thread (the CPU backend) runs this one off it instead, so
   * the work overlaps the queued ops. Backends whose ops already run elsewhere ignore it.
   */
  readonly overlapHostWork?: boolean;
}

export interface BackendMemoryStats {
  /** Bytes currently held by live tensors (views excluded), mapped ones included. */
  readonly allocatedBytes: number;
  readonly numTensors: number;
  /** Of allocatedBytes, those of tensors over mapped files (Backend.mapWeightFile): page cache, not heap. Absent: none. */
  readonly mappedBytes?: number;
}

/**
 * A weight file mapped read-only into memory (Backend.mapWeightFile). Tensors over it are views of
 * the kernel's page cache (shared, never copied into the heap); the mapping lives as long as this
 * handle or any tensor over it. Truncating the file while mapped makes a later access fault (SIGBUS):
 * the size is checked when it is mapped, not after.
 */
export interface MappedWeightFile {
  readonly sizeBytes: number;
  /** Bytes [offset, offset + length) as read-only host memory, no copy (for tensors that need transforming). Never write into it. */
  bytes(offset: number, length: number): Uint8Array;
  /**
   * A tensor over the file's bytes from byteOffset (numel(shape) elements of dtype, stored as the
   * tensor's layout), no copy. Read-only: only ever an op input; upload() into it is refused. Free it as any tensor.
   */
  tensor(shape: readonly number[], dtype: DType, byteOffset: number): Tensor;
  /** Drops this handle; tensors over the file keep the mapping alive. */
  close(): void;
}

/**
 * Paged attention metadata for one step (a StepBatch flattened for kernels). The step holds S
 * sequences whose new tokens are laid out back to back: sequence s owns token rows
 * queryStartLoc[s] .. queryStartLoc[s+1]-1. Its context after this step's KV writes has seqLens[s]
 * tokens, so its j-th new token sits at position seqLens[s] - qLen_s + j and attends (causally)
 * to keys at positions 0..that position (and, with a sliding window W, only the last W of them:
 * positions pos-W+1..pos, its own included). Sequences with qLen 0 are skipped. Cache slots not
 * named by the metadata may hold anything (even NaN) and must never reach an output.
 * Key position p of sequence s lives in slot blockTables[s, floor(p / blockSize)] * blockSize +
 * p % blockSize of every layer's cache.
 */
export interface AttentionMetadata {
  readonly numSeqs: number;
  /**
   * Host copies of the largest qLen / seqLen this step (kernels size their grids with these). Upper
   * bounds are allowed (>= the true maxima): a graph-captured decode step passes the block-table
   * capacity (maxBlocksPerSeq * blockSize) so that its grid does not depend on the step.
   */
  readonly maxQueryLen: number;
  readonly maxSeqLen: number;
  /** i32 [numSeqs + 1], queryStartLoc[0] = 0, queryStartLoc[numSeqs] = numTokens. */
  readonly queryStartLoc: Tensor;
  /** i32 [numSeqs]: context length of each sequence including this step's tokens. */
  readonly seqLens: Tensor;
  /** i32 [numSeqs, maxBlocksPerSeq]: physical block ids; unused entries may hold anything. */
  readonly blockTables: Tensor;
}

/**
 * One layer's paged KV cache: both tensors [numBlocks, blockSize, numKvHeads, headDim], of one dtype:
 * the backend's computeDType, or, where the backend supports it, f16/bf16 with f32 compute (the CPU
 * backend and the reference; CUDA caches are computeDType only). kvWrite rounds to the cache dtype
 * (nearest even); attention converts cached values to f32 exactly and computes as with an f32 cache.
 */
export interface KvLayer {
  readonly k: Tensor;
  readonly v: Tensor;
}

/**
 * Optional capability: record a sequence of ops once and replay it with one call (CUDA graphs via
 * stream capture). Semantics every implementation must keep:
 * - capture(key, fn) runs fn, during which op calls (embedding .. argmax and backend extras such as
 *   sample) are RECORDED, not executed: no output is written by capture itself. Host arguments
 *   (shapes, eps, scale, AttentionMetadata.maxQueryLen / maxSeqLen, path choices) are frozen at
 *   capture time; tensor CONTENTS are read when replayed. alloc, free, upload, view of new storage,
 *   read*, synchronize and dispose inside fn are errors (TokenmillError 'cuda_error' on CUDA; the
 *   partial recording is discarded and the key stays absent). Capturing an existing key replaces it.
 * - replay(key) enqueues the recorded ops in order, like calling them again with the same arguments,
 *   in stream order with other ops (no implicit synchronisation). Unknown key: TokenmillError.
 * - Every tensor a recording touches must stay alive (not freed) until clear(); callers refresh
 *   inputs by upload() into the same tensors before replay.
 * - clear() drops every recording (call it before freeing tensors they touch); has(key) tests one.
 */
export interface BackendGraphs {
  capture(key: string, fn: () => void): void;
  replay(key: string): void;
  has(key: string): boolean;
  /** Drop one recording (no-op when absent). */
  delete(key: string): void;
  clear(): void;
  /** Number of recordings held. */
  readonly size: number;
  /**
   * Whether the engine replays decode steps through these graphs unless told otherwise
   * (EngineOptions.decodeGraphs 'auto'): true where replay has been checked against eager execution
   * on every test run (CPU), false where it waits for a device run (CUDA).
   */
  readonly decodeByDefault: boolean;
  /**
   * Whether each recording needs one eager run first (CUDA: lazy module loading and library
   * heuristics must not happen inside stream capture). The CPU's capture only records commands.
   */
  readonly warmupBeforeCapture: boolean;
}

/** How alloc commits memory. */
export interface AllocOptions {
  /**
   * Commit every page now, zero-filled: for pools written bit by bit over the server's life (the KV
   * cache), so that the memory they hold shows from the start instead of creeping up as first writes
   * fault pages in (an operator reads that creep as a leak), and no decode step pays those faults.
   * llama.cpp clears its KV buffer at creation for the same effect. Backends whose memory is
   * committed when allocated (device memory, JS typed arrays) have nothing to do.
   */
  readonly resident?: boolean;
}

export interface Backend {
  readonly name: string;
  /** dtype of activations and the KV cache: f32 on reference/cpu, bf16 or f16 on cuda. */
  readonly computeDType: DType;
  /** Present when the backend can record and replay op sequences (CUDA graphs). See BackendGraphs. */
  readonly graphs?: BackendGraphs;

  // ---------------------------------------------------------------------------------- memory
  /** A new tensor; contents unspecified until written, unless opts.resident. */
  alloc(shape: readonly number[], dtype: DType, opts?: AllocOptions): Tensor;
  /**
   * Copy host data into dst (all of it, or starting at element dstOffset). Conversion: Float32Array
   * into f32/f16/bf16 tensors (rounded to nearest even); Uint16Array holds raw bits of dst's own
   * dtype (f16 or bf16 only); Int32Array into i32 tensors; Int8Array into i8 tensors.
   */
  upload(dst: Tensor, src: HostData, dstOffset?: number): void;
  /** A tensor over the same storage: numel(shape) elements starting at element offset. */
  view(t: Tensor, shape: readonly number[], offset?: number): Tensor;
  /**
   * Optional: map a weight file so that tensors can live in it (GGUF weights used as stored); null
   * where mapping is off or fails (the caller reads the file instead). The caller checks sizeBytes
   * against the size it validated the file's header with.
   */
  mapWeightFile?(path: string): MappedWeightFile | null;
  /** Copy to the host as f32 (float tensors) after all enqueued work. */
  read(t: Tensor, opts?: ReadOptions): Promise<Float32Array>;
  readInt32(t: Tensor): Promise<Int32Array>;
  /** Release a tensor (not a view). Using it afterwards is a bug. */
  free(t: Tensor): void;
  /** Wait for all enqueued work. */
  synchronize(): Promise<void>;
  memoryStats(): BackendMemoryStats;
  /** Free everything this backend holds (threads, streams, device memory). */
  dispose(): void;

  // ------------------------------------------------------------------------------------- ops
  // Shapes: T = tokens in the step, D = hidden size, V = vocab, H = query heads, Hkv = kv heads,
  // Dh = head dim, I = intermediate size. Unless said otherwise, float inputs and outputs are in
  // computeDType, and out may not alias an input.

  /** out[t, :] = table[ids[t], :]. out [T, D], table [V, D] (any float dtype), ids i32 [T]. */
  embedding(out: Tensor, table: Tensor, ids: Tensor): void;

  /** out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight. x, out [R, D]; weight [D]. out may alias x. */
  rmsnorm(out: Tensor, x: Tensor, weight: Tensor, eps: number): void;

  /**
   * Fused residual add + rmsnorm: residual += x, then out = rmsnorm(residual) * weight.
   * residual, x, out [R, D]; weight [D]. out may alias x (not residual).
   */
  addRmsnorm(out: Tensor, residual: Tensor, x: Tensor, weight: Tensor, eps: number): void;

  /**
   * out = x . w^T (+ bias). x [T, K] computeDType; w [N, K] any float dtype (weights may stay
   * f16/bf16 while computeDType is f32); bias [N] or null; out [T, N] in computeDType or f32
   * (logits are read in f32). Accumulates in f32 at least.
   */
  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null): void;

  /**
   * Optional weight-only int8 matmul (a backend may lack it; model/quantize.ts then refuses to
   * quantize): out[t, n] = scales[n] * sum_k x[t, k] * wq[n, k] (+ bias[n]), i.e. x . (wq * s)^T
   * with the per-output-channel scale applied once after the dot product. x [T, K] computeDType;
   * wq [N, K] i8 (symmetric, values in -127..127); scales [N] f32; bias [N] any float dtype or null;
   * out [T, N] in computeDType or f32. Accumulates in f32 at least; the weights are never
   * materialised in a float dtype for small T (decode reads 1 byte per weight). Results per
   * element must not depend on T, N tiling or threads (batch invariance, as matmul). The CPU backend
   * rounds each activation row to int16 codes (scale max|x[t, :]| / 32767) for integer dot products:
   * error <= max|x[t, :]| / 65534 * s[n] * sum|wq[n, :]|, on top of f32 rounding.
   */
  matmulQ8?(out: Tensor, x: Tensor, wq: Tensor, scales: Tensor, bias: Tensor | null): void;

  /**
   * Optional weight-only matmul on ggml blocks (the quantized types of GGUF files, kept as stored):
   * out = x . dequant(w)^T (+ bias) with the activations quantized per group of 32 as the spec says
   * (runtime/reference/ops-ggml.ts: int8 codes, one f32 scale per group, exact integer block sums).
   * w is an i8 tensor of raw block bytes [N, rowBytes] (runtime/ggml-format.ts), K = x's row length =
   * ggmlRowElems(type, rowBytes); x [T, K] computeDType; bias [N] float or null; out [T, N] f32 or
   * computeDType. Results per element must not depend on T, tiling or threads (batch invariance).
   */
  matmulGgml?(out: Tensor, x: Tensor, w: Tensor, type: GgmlQuantType, bias: Tensor | null): void;

  /** Optional: out[t, :] = the exactly decoded row ids[t] of a ggml weight w [V, rowBytes] i8. out [T, K]. */
  embeddingGgml?(out: Tensor, w: Tensor, type: GgmlQuantType, ids: Tensor): void;

  /**
   * Rotary embedding in place, HF "rotate_half" layout: for each head and i < Dh/2, with
   * a = x[i], b = x[i + Dh/2], angle = positions[t] * invFreq[i]:
   * x[i] = a cos - b sin, x[i + Dh/2] = b cos + a sin. q [T, H, Dh], k [T, Hkv, Dh],
   * positions i32 [T], invFreq f32 [Dh/2] (model-specific scaling, e.g. llama3, is baked in).
   * The angle positions[t] * invFreq[i] is rounded to f32 before cos/sin, as HF computes it.
   */
  rope(q: Tensor, k: Tensor, positions: Tensor, invFreq: Tensor): void;

  /**
   * Write this step's keys and values into the paged cache: for each token t with
   * slotMapping[t] >= 0, cache.k[slot] = k[t], cache.v[slot] = v[t] (slot indexes the flattened
   * [numBlocks * blockSize] axis). k, v [T, Hkv, Dh]; slotMapping i32 [T]; a negative slot skips
   * the token (padding). Values are rounded to the cache dtype (nearest even) when it is narrower
   * than k/v's (an f16/bf16 cache with f32 compute, see KvLayer).
   */
  kvWrite(cache: KvLayer, k: Tensor, v: Tensor, slotMapping: Tensor): void;

  /**
   * Optional fused decode op (a backend may lack it; callers then compose it, see
   * runtime/reference/ops-qkv.ts composeRopeKvWriteQkv): qkv [T, (H + 2 Hkv) * Dh] holds per token
   * row H query heads, Hkv key heads, Hkv value heads (one matmul with concatenated q/k/v weights).
   * Writes qOut [T, H, Dh] = the query heads rotated as rope() does, and for each token with
   * slotMapping[t] >= 0 the rotated key heads into cache.k[slot] and the value heads into
   * cache.v[slot], as kvWrite() does. Results equal rope + kvWrite on the split q, k, v exactly.
   * qkv is not modified; qOut may not alias qkv or the cache.
   */
  ropeKvWriteQkv?(qOut: Tensor, qkv: Tensor, cache: KvLayer, positions: Tensor, invFreq: Tensor, slotMapping: Tensor): void;

  /**
   * Causal grouped-query attention of this step's queries over the paged cache (which already holds
   * this step's keys): out[t, h] = softmax(scale * q[t, h] . K^T) V over the keys the metadata
   * allows, using kv head h / (H / Hkv). q, out [T, H, Dh]. slidingWindow 0 means none.
   */
  attention(out: Tensor, q: Tensor, cache: KvLayer, meta: AttentionMetadata, scale: number, slidingWindow: number): void;

  /** out[t, i] = silu(gateUp[t, i]) * gateUp[t, I + i]. gateUp [T, 2I] (gate then up), out [T, I]. */
  siluMul(out: Tensor, gateUp: Tensor): void;

  /** out[s, :] = x[rows[s], :]. x [T, D], rows i32 [S], out [S, D]. Picks the rows whose logits we need. */
  gatherRows(out: Tensor, x: Tensor, rows: Tensor): void;

  /** out[s] = argmax over v of logits[s, v] (lowest index on ties). logits [S, V] f32, out i32 [S]. */
  argmax(out: Tensor, logits: Tensor): void;

  /**
   * Optional device-side sampling (the CUDA backend has it): out[s] = one id drawn from row s of
   * logits f32 [S, V] under rows[s]'s knobs (penalties over its history, temperature, top-k, min-p,
   * top-p; SamplingParams semantics), from a PRNG stream keyed by rows[s].seed. Only ids come back.
   */
  sample?(out: Tensor, logits: Tensor, rows: readonly DeviceSampleRow[]): void;

  /**
   * Optional grammar masking in place (the reference and CUDA have it): packed holds [numMasked] row
   * ids of logits f32 [S, V], then [numMasked, words] allowed-token bitmasks in xgrammar's layout
   * (runtime/token-bitmask.ts); every logit of those rows whose bit is clear (or past 32 * words)
   * becomes -inf, the others stay bit for bit. Enqueued like any op (the host array may be reused
   * as soon as the call returns); used before sample() so that constrained rows sample on the device.
   */
  applyTokenBitmask?(logits: Tensor, packed: Int32Array, numMasked: number, words: number): void;
}

/** The per-token sampling knobs: a request sets them (engine SamplingParams), the samplers apply them. */
export interface SamplingKnobs {
  /** 0 means greedy (argmax). */
  readonly temperature: number;
  /** 0 or >= vocab disables. */
  readonly topK: number;
  /** 1 disables. */
  readonly topP: number;
  /** 0 disables. */
  readonly minP: number;
  /** 1 disables; > 1 discourages tokens already in prompt or output (HF/vLLM semantics). */
  readonly repetitionPenalty: number;
  /** OpenAI semantics over generated tokens: logit -= presence * (count > 0) + frequency * count. */
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
}

/** One row's knobs for Backend.sample. */
export interface DeviceSampleRow extends SamplingKnobs {
  /** PRNG stream id (only bits below 2^53 count): the caller mixes seed, choice and position. */
  readonly seed: number;
  /** Prompt + generated token ids (for penalties; may be empty when none applies). */
  readonly history: Int32Array;
  /** How many entries at the end of history are generated tokens (presence/frequency use those). */
  readonly numGenerated: number;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The backends' op-argument invariant past ownership: dtype one of `dtypes`, shape `shape` when given (-1 = any extent). */
export function checkArgLayout(t: Tensor, name: string, dtypes: readonly DType[], shape?: readonly number[]): void {
  invariant(dtypes.includes(t.dtype), () => `${name}: dtype ${t.dtype}, expected ${dtypes.join(' | ')}`);
  if (shape) {
    const ok = shape.length === t.shape.length && shape.every((d, i) => d === -1 || d === t.shape[i]);
    invariant(ok, () => `${name}: shape [${t.shape.join(', ')}], expected [${shape.map((d) => (d === -1 ? '*' : d)).join(', ')}]`);
  }
}
