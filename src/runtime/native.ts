// The one file that types the whole native surface: the CPU addon
// (build/Release/tokenmill_cpu.node, scripts/build-native.mjs) and the CUDA addon
// (build/Release/tokenmill_cuda.node, scripts/build-cuda.mjs where nvcc exists). native-load.ts loads
// them (lazily; a missing, broken or stale binary is a reason string, never thrown at import time).
// configureNativeAddons() names other paths (the CLI maps TOKENMILL_CPU_ADDON / TOKENMILL_CUDA_ADDON
// to it, for the bundled GPU suite).
export { configureNativeAddons, loadCpuAddon, loadCudaAddon, type NativeAddonPaths } from './native-load.js';

/** Opaque native CpuEngine handle (an N-API external). */
export interface CpuEngineHandle {
  readonly __cpuEngine: unique symbol;
}

/** Opaque mapped-file handle of the CPU addon (an N-API external). */
export interface MappedFileHandle {
  readonly __mappedFile: unique symbol;
}

export interface CpuEngineInfo {
  /** Kernel ISA chosen at run time: 'avx512amx' | 'avx512vnni' | 'avx512' | 'avx2vnni' | 'avx2' | 'generic'. */
  readonly isa: string;
  readonly numThreads: number;
  /** Heap buffers (alloc). */
  readonly allocatedBytes: number;
  /** Buffers over mapped files (allocMapped); absent from addons built before mapped files. */
  readonly mappedBytes?: number;
  /** With the engine's `profile` option: wall ns and calls per op code (index = OP code). */
  readonly opTimeNs?: readonly number[];
  readonly opCalls?: readonly number[];
}

/** The CPU engine's worker pool (native/cpu/thread_pool.h); the CLI reads TOKENMILL_SPIN_US / TOKENMILL_POOL_SOLO. */
export interface CpuPoolOptions {
  /** Microseconds an idle worker spins before it sleeps (default 50; 0 = sleep at once). */
  readonly spinUs?: number;
  /** Fall back to caller-only jobs while workers are preempted (default true). */
  readonly poolSolo?: boolean;
}

/** Engine switches (native/cpu/engine.h EngineOptions); the CLI reads TOKENMILL_CPU_PROFILE / TOKENMILL_CPU_HUGEPAGES. */
export interface CpuEngineSwitches {
  /** Accumulate per-op wall time and call counts (engineInfo opTimeNs / opCalls); default false. */
  readonly profile?: boolean;
  /** Ask for transparent huge pages on buffers >= 2 MiB; default true. */
  readonly hugepages?: boolean;
}

/** Status names the CPU addon puts in Error.code. */
export type CpuNativeCode = 'invalid_argument' | 'out_of_range' | 'out_of_memory' | 'internal';

/** tokenmill_cpu.node: every function throws an Error with code CpuNativeCode on failure. */
export interface CpuAddon {
  /**
   * forceIsa: '' for the best supported, or 'avx512amx' | 'avx512vnni' | 'avx512' | 'avx2vnni' | 'avx2' | 'generic'.
   * Options absent = defaults.
   */
  createEngine(numThreads: number, forceIsa: string, options?: CpuPoolOptions & CpuEngineSwitches): CpuEngineHandle;
  /** Frees every buffer and joins the workers; the handle is dead afterwards. */
  destroyEngine(engine: CpuEngineHandle): void;
  engineInfo(engine: CpuEngineHandle): CpuEngineInfo;
  /** A 64-byte aligned buffer: [id, ArrayBuffer over it]. */
  alloc(engine: CpuEngineHandle, sizeBytes: number): [number, ArrayBuffer];
  /** glibc malloc_trim: gives the allocator's free memory back to the OS; false where there is none. Absent from older builds. */
  trimMemory?(): boolean;
  /** Frees buffer id and detaches its ArrayBuffer. */
  free(engine: CpuEngineHandle, id: number, buffer: ArrayBuffer): void;
  /** Executes numInts ints of recorded commands now (format: runtime/cpu/cpu-tensor.ts). */
  flush(engine: CpuEngineHandle, commands: Int32Array, numInts: number): void;
  /**
   * Copies the commands and runs them on a libuv worker thread (with the engine's pool); the
   * Promise always resolves: the outcome is reported by the next waitIdle(). Every other call
   * blocks until it is done.
   */
  flushAsync(engine: CpuEngineHandle, commands: Int32Array, numInts: number): Promise<void>;
  /** Blocks until no async flush runs; throws (once) if the last one failed. */
  waitIdle(engine: CpuEngineHandle): void;
  /** Writes src into buffer id at byteOffset as f16 (dtypeCode 1) or bf16 (2). */
  convertFromF32(engine: CpuEngineHandle, src: Float32Array, id: number, byteOffset: number, dtypeCode: number): void;
  /**
   * Maps a whole file read-only (PROT_READ, MAP_PRIVATE; native/cpu/file_map.h): [handle, sizeBytes].
   * expectedBytes (-1: any) is the size the caller validated the file against: out_of_range when it
   * differs now. invalid_argument when it cannot be opened, out_of_memory when it cannot be mapped.
   * The mapping lives while the handle (until unmapFile), a view or a buffer over it does. Absent
   * where mmap is unavailable and from addons built before mapped files.
   */
  mapFile?(path: string, expectedBytes: number): [MappedFileHandle, number];
  /** Drops the handle's reference to the mapping (idempotent). */
  unmapFile?(handle: MappedFileHandle): void;
  /** A read-only ArrayBuffer over bytes [offset, offset + length) of the file (out_of_range outside it). Never write into it. */
  mappingView?(handle: MappedFileHandle, offset: number, length: number): ArrayBuffer;
  /** A buffer over those bytes of the file, no copy: [id, ArrayBuffer] as alloc; read-only (an op input only). */
  allocMapped?(engine: CpuEngineHandle, handle: MappedFileHandle, offset: number, length: number): [number, ArrayBuffer];
  /**
   * Reads every GPU through NVML (libraryName opened with dlopen, e.g. 'libnvidia-ml.so.1') on a
   * libuv worker thread. Never rejects: a missing library or failed init gives available = false.
   * Absent from CPU addons built before NVML sampling existed.
   */
  nvmlSample?(libraryName: string): Promise<NvmlSample>;
  /**
   * Read bandwidth in GB/s per rep: a pre-touched buffer of sizeBytes summed by numThreads threads
   * (bench only; blocks ~0.1 s per GiB per rep). Absent from addons built before the probe.
   */
  probeReadBandwidth?(numThreads: number, sizeBytes: number, reps: number): number[];
  /**
   * N rows of ggml type `typeId` blocks from the [N, K] f32 matrix x (native/cpu/ggml_quantize.h: the
   * bytes of model/convert/ggml-quantize.ts's reference), on `threads` threads; blocks the caller.
   * The caller checks that the weights are finite. isa forces one copy of its search loops (every copy
   * writes the same bytes; tests run each the CPU has): invalid_argument where it cannot run.
   * Absent from addons built before it.
   */
  quantizeGgml?(typeId: number, x: Float32Array, N: number, K: number, threads: number, isa?: QuantizeIsa): Uint8Array;
  /** Payload ints per op code of the op ABI the binary was built with (native/cpu/op_abi.h). */
  readonly opPayloadInts: readonly number[];
}

/** The copies of the native GGUF quantizer's loops (CpuAddon.quantizeGgml). */
export type QuantizeIsa = 'auto' | 'baseline' | 'avx2' | 'avx512';

/** One NVML reading; a field is null when the device does not report it. */
export interface NvmlDeviceSample {
  readonly index: number;
  readonly name: string;
  readonly utilizationPct: number | null;
  readonly memoryUsedBytes: number | null;
  readonly memoryTotalBytes: number | null;
  readonly powerWatts: number | null;
  readonly temperatureC: number | null;
  readonly smClockMHz: number | null;
}

export interface NvmlSample {
  readonly available: boolean;
  /** Why NVML is unavailable ('' when available). */
  readonly reason: string;
  readonly devices: readonly NvmlDeviceSample[];
}

export interface AddonLoad<T> {
  readonly addon: T | null;
  /** Why it is null, or where it was loaded from. */
  readonly reason: string;
}

// --- CUDA addon --------------------------------------------------------------------------------

export interface CudaProbeRaw {
  ok: boolean;
  reason: string;
  driverVersion: number;
  runtimeVersion: number;
  cublasLt: boolean;
  cublasLtReason: string;
  devices: {
    name: string;
    computeCapability: string;
    totalMemoryBytes: number;
    freeMemoryBytes: number;
    bf16: boolean;
    numSms: number;
    l2Bytes: number;
  }[];
}

/**
 * One device context: a stream, cuBLASLt handle, block cache. Pointers are plain numbers.
 * Every method throws Error('cuda_error: ...' | 'out_of_memory: ...').
 */
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
  rope(
    q: number,
    k: number,
    dt: number,
    positions: number,
    invFreq: number,
    numTokens: number,
    numHeads: number,
    numKvHeads: number,
    headDim: number,
  ): void;
  kvWrite(
    kCache: number,
    vCache: number,
    k: number,
    v: number,
    dt: number,
    slots: number,
    numTokens: number,
    rowElems: number,
    numSlots: number,
  ): void;
  /** Present in addons built from the fused-QKV commit on (optional so older binaries still load). */
  ropeKvWriteQkv?(
    qOut: number,
    qkv: number,
    kCache: number,
    vCache: number,
    dt: number,
    positions: number,
    invFreq: number,
    slots: number,
    numTokens: number,
    numHeads: number,
    numKvHeads: number,
    headDim: number,
    numSlots: number,
  ): void;
  attention(
    out: number,
    q: number,
    kCache: number,
    vCache: number,
    queryStartLoc: number,
    seqLens: number,
    blockTables: number,
    dt: number,
    numTokens: number,
    numSeqs: number,
    numHeads: number,
    numKvHeads: number,
    headDim: number,
    blockSize: number,
    maxBlocksPerSeq: number,
    maxQueryLen: number,
    maxSeqLen: number,
    slidingWindow: number,
    numCacheBlocks: number,
    scale: number,
    dynamicSplits?: number,
  ): void;
  siluMul(out: number, gateUp: number, dt: number, rows: number, inter: number): void;
  /** mode 0 auto, 1 own kernels only, 2 cuBLASLt only. Returns the path that ran. */
  matmul(
    out: number,
    dtOut: number,
    x: number,
    dtX: number,
    w: number,
    dtW: number,
    bias: number,
    dtBias: number,
    numTokens: number,
    n: number,
    k: number,
    mode: number,
  ): 'gemv' | 'tiled' | 'cublaslt';
  /** Weight-only int8 (gemm_q8.cu); optional so that older binaries still load. Returns the path that ran. */
  matmulQ8?(
    out: number,
    dtOut: number,
    x: number,
    dtX: number,
    wq: number,
    scales: number,
    bias: number,
    dtBias: number,
    numTokens: number,
    n: number,
    k: number,
  ): 'gemv_q8' | 'tiled_q8';
  /** out[n, k] = wq[n, k] * scales[n] in dtOut. */
  dequantQ8?(out: number, dtOut: number, wq: number, scales: number, n: number, k: number): void;
  /** ggml block weights (gemm_ggml.cu); optional so that older binaries still load. type: the ggml type id. */
  matmulGgml?(
    out: number,
    dtOut: number,
    x: number,
    dtX: number,
    w: number,
    type: number,
    rowBytes: number,
    bias: number,
    dtBias: number,
    numTokens: number,
    n: number,
    k: number,
  ): 'gemv_ggml' | 'batched_ggml';
  embeddingGgml?(
    out: number,
    dtOut: number,
    w: number,
    type: number,
    rowBytes: number,
    ids: number,
    numTokens: number,
    v: number,
    k: number,
  ): void;
  argmax(out: number, logits: number, rows: number, vocab: number): void;
  sample(
    out: number,
    logits: number,
    scratch: number,
    counts: number,
    params: number,
    seeds: number,
    history: number,
    numGenerated: number,
    historyLens: number,
    rows: number,
    vocab: number,
    maxHistory: number,
  ): void;
  /** Grammar masks (runtime/token-bitmask.ts layout); optional so that older binaries still load. */
  applyTokenBitmask?(logits: number, packed: Int32Array, numMasked: number, vocab: number, words: number): void;
  info(): { cublasLt: boolean; numSms: number; device: number; cachedBytes: number };
}

export interface CudaAddon {
  readonly abiVersion: number;
  /** cublasLtPath: libcublasLt to try first ('' = the default search); the first probe or context of a process loads it. */
  probe(cublasLtPath?: string): CudaProbeRaw;
  CudaContext: new (deviceIndex: number, attentionWorkspaceBytes: number, cublasLtPath?: string) => CudaContextNative;
}

/** The addon's graph surface (present in addons built from this commit on; ABI 1 stays compatible). */
export interface CudaGraphNative {
  graphBegin(): void;
  /** Ends the capture, instantiates, returns a graph id (never reused). */
  graphEnd(): number;
  /** Ends a failed capture and drops it; no-op when not capturing. */
  graphAbort(): void;
  graphLaunch(id: number): void;
  /** id 0: all graphs. */
  graphDestroy(id: number): void;
}
