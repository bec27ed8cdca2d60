// Capacity planning maths (pure functions, no I/O): exact parameter count from the model shape,
// weight memory, KV bytes per token, how many sequences fit at a context length, and a roofline
// estimate of decode tok/s and USD per 1M output tokens per batch size. Takes plain numbers (the CLI
// parses config.json), so metrics never imports model. Cost goes through cost.ts only.
import { usdPer1kTokens } from './cost.js';

/** The model numbers the planner needs (ModelConfig's names; the CLI fills them from config.json). */
export interface PlannerModelShape {
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly tieWordEmbeddings: boolean;
  /** q/k/v projection biases (Qwen2). */
  readonly attentionBias: boolean;
  /** Per-head q/k RMSNorm weights (Qwen3). */
  readonly qkNorm: boolean;
}

export type PlanDType = 'bf16' | 'f16' | 'f32' | 'int8';
export const PLAN_DTYPES: readonly PlanDType[] = ['bf16', 'f16', 'f32', 'int8'];
export const PLAN_DTYPE_BYTES: Readonly<Record<PlanDType, number>> = { bf16: 2, f16: 2, f32: 4, int8: 1 };

/** The accelerator numbers the roofline needs (see gpu-specs.ts). */
export interface PlannerAccelerator {
  readonly memoryGb: number;
  readonly bandwidthGbPerS: number;
  readonly bf16Tflops: number;
  readonly fp32Tflops: number;
}

export interface ParamCount {
  readonly total: number;
  /** Token embedding table [V, D]. */
  readonly embedding: number;
  /** Untied lm_head [V, D]; 0 when tied to the embedding. */
  readonly lmHead: number;
  /** Projection matrices of all layers (q, k, v, o, gate, up, down). */
  readonly layerMatrices: number;
  /** RMSNorm weights (per layer, q/k norms, final norm) and biases: the small vectors. */
  readonly small: number;
  /** Weights a decode token multiplies by (layer matrices + the classifier, tied or not). */
  readonly matmul: number;
}

export function countParams(m: PlannerModelShape): ParamCount {
  const D = m.hiddenSize;
  const q = m.numHeads * m.headDim;
  const kv = m.numKvHeads * m.headDim;
  const perLayerMatrices = D * q + 2 * D * kv + q * D + 3 * D * m.intermediateSize;
  const perLayerSmall = 2 * D + (m.attentionBias ? q + 2 * kv : 0) + (m.qkNorm ? 2 * m.headDim : 0);
  const embedding = m.vocabSize * D;
  const lmHead = m.tieWordEmbeddings ? 0 : m.vocabSize * D;
  const layerMatrices = m.numLayers * perLayerMatrices;
  const small = m.numLayers * perLayerSmall + D;
  return {
    total: embedding + lmHead + layerMatrices + small,
    embedding,
    lmHead,
    layerMatrices,
    small,
    matmul: layerMatrices + m.vocabSize * D,
  };
}

/** Bytes the weights occupy: matrices in weightDType; norms and biases in the compute dtype (bf16, f32 for f32). */
export function weightBytes(m: PlannerModelShape, weightDType: PlanDType): number {
  const p = countParams(m);
  const smallBytes = weightDType === 'f32' ? 4 : 2;
  return (p.embedding + p.lmHead + p.layerMatrices) * PLAN_DTYPE_BYTES[weightDType] + p.small * smallBytes;
}

/** K and V for one token over all layers: 2 x layers x kvHeads x headDim x dtype bytes. */
export function kvBytesPerToken(m: PlannerModelShape, kvDType: PlanDType): number {
  return 2 * m.numLayers * m.numKvHeads * m.headDim * PLAN_DTYPE_BYTES[kvDType];
}

export interface PlanOptions {
  readonly model: PlannerModelShape;
  readonly accelerator: PlannerAccelerator;
  readonly usdPerHour: number;
  /** KV length per sequence (prompt + output) at which memory and the decode step are evaluated. */
  readonly contextLen: number;
  readonly weightDType: PlanDType;
  readonly kvDType: PlanDType;
  /** Share of device memory held back for the CUDA context, workspaces, activations and fragmentation. */
  readonly reserveFraction?: number;
  /** KV page size in tokens: a sequence holds whole pages (engine default 16). */
  readonly blockSize?: number;
  readonly batchSizes?: readonly number[];
}

export const DEFAULT_RESERVE_FRACTION = 0.1;
export const DEFAULT_BLOCK_SIZE = 16;
export const DEFAULT_BATCH_SIZES: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export interface DecodeEstimate {
  readonly batch: number;
  /** Bytes read from memory per decode step (weights + the batch's KV). */
  readonly bytesPerStep: number;
  readonly flopsPerStep: number;
  readonly memorySeconds: number;
  readonly computeSeconds: number;
  readonly stepSeconds: number;
  readonly bound: 'memory' | 'compute';
  readonly tokPerS: number;
  readonly usdPer1MTokens: number;
  /** Whether this many sequences' KV fits in memory at contextLen. */
  readonly fits: boolean;
}

export interface CapacityPlan {
  readonly params: ParamCount;
  readonly weightBytes: number;
  readonly kvBytesPerToken: number;
  /** KV bytes one sequence holds at contextLen, rounded up to whole blocks. */
  readonly kvBytesPerSequence: number;
  readonly memoryBytes: number;
  readonly reserveFraction: number;
  readonly reserveBytes: number;
  /** Memory left for the KV pool (negative when the weights alone do not fit). */
  readonly kvPoolBytes: number;
  readonly maxConcurrentSequences: number;
  readonly contextLen: number;
  readonly blockSize: number;
  readonly usdPerHour: number;
  readonly decode: readonly DecodeEstimate[];
}

/**
 * Roofline of one decode step for `batch` sequences each holding `contextLen` tokens of KV.
 * bytes = weights read once (the untied embedding table only for the batch's rows) + batch x KV;
 * flops = batch x (2 x matmul params + attention 4 x layers x heads x headDim x contextLen);
 * time = max(bytes / bandwidth, flops / peak). Peak is bf16 dense (f32 peak for f32 weights).
 */
export function decodeEstimate(o: PlanOptions, batch: number, contextLen = o.contextLen): DecodeEstimate {
  const m = o.model;
  const p = countParams(m);
  const wb = PLAN_DTYPE_BYTES[o.weightDType];
  const untiedTableBytes = m.tieWordEmbeddings ? 0 : p.embedding * wb;
  const readWeights = weightBytes(m, o.weightDType) - untiedTableBytes + (m.tieWordEmbeddings ? 0 : batch * m.hiddenSize * wb);
  const bytesPerStep = readWeights + batch * contextLen * kvBytesPerToken(m, o.kvDType);
  const attentionFlops = 4 * m.numLayers * m.numHeads * m.headDim * contextLen;
  const flopsPerStep = batch * (2 * p.matmul + attentionFlops);
  const peakFlops = (o.weightDType === 'f32' ? o.accelerator.fp32Tflops : o.accelerator.bf16Tflops) * 1e12;
  const memorySeconds = bytesPerStep / (o.accelerator.bandwidthGbPerS * 1e9);
  const computeSeconds = flopsPerStep / peakFlops;
  const stepSeconds = Math.max(memorySeconds, computeSeconds);
  const tokPerS = batch / stepSeconds;
  return {
    batch,
    bytesPerStep,
    flopsPerStep,
    memorySeconds,
    computeSeconds,
    stepSeconds,
    bound: computeSeconds > memorySeconds ? 'compute' : 'memory',
    tokPerS,
    // The one cost formula: one second of wall time produces tokPerS tokens.
    usdPer1MTokens: usdPer1kTokens(o.usdPerHour, 1, tokPerS) * 1000,
    fits: batch <= maxSequences(o, contextLen),
  };
}

function kvPerSequence(o: PlanOptions, contextLen: number): number {
  const blockSize = o.blockSize ?? DEFAULT_BLOCK_SIZE;
  return Math.ceil(contextLen / blockSize) * blockSize * kvBytesPerToken(o.model, o.kvDType);
}

function kvPool(o: PlanOptions): { memoryBytes: number; reserveBytes: number; kvPoolBytes: number } {
  const memoryBytes = o.accelerator.memoryGb * 1e9;
  const reserveBytes = memoryBytes * (o.reserveFraction ?? DEFAULT_RESERVE_FRACTION);
  return { memoryBytes, reserveBytes, kvPoolBytes: memoryBytes - reserveBytes - weightBytes(o.model, o.weightDType) };
}

function maxSequences(o: PlanOptions, contextLen: number): number {
  const { kvPoolBytes } = kvPool(o);
  return kvPoolBytes <= 0 ? 0 : Math.floor(kvPoolBytes / kvPerSequence(o, contextLen));
}

export function planCapacity(o: PlanOptions): CapacityPlan {
  const pool = kvPool(o);
  return {
    params: countParams(o.model),
    weightBytes: weightBytes(o.model, o.weightDType),
    kvBytesPerToken: kvBytesPerToken(o.model, o.kvDType),
    kvBytesPerSequence: kvPerSequence(o, o.contextLen),
    ...pool,
    reserveFraction: o.reserveFraction ?? DEFAULT_RESERVE_FRACTION,
    maxConcurrentSequences: maxSequences(o, o.contextLen),
    contextLen: o.contextLen,
    blockSize: o.blockSize ?? DEFAULT_BLOCK_SIZE,
    usdPerHour: o.usdPerHour,
    decode: (o.batchSizes ?? DEFAULT_BATCH_SIZES).map((b) => decodeEstimate(o, b)),
  };
}

/** One measured throughput point taken from a bench record. */
export interface MeasuredPoint {
  readonly label: string;
  readonly tokPerS: number;
  readonly batch: number;
  /** KV length the measurement ran at (inLen + outLen / 2) when the record says; else null. */
  readonly contextLen: number | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** tokPerS may be a number or a stats object ({median} / {mean}). */
function tokPerSOf(r: Record<string, unknown>): number | null {
  for (const key of ['tokPerS', 'outputTokPerS', 'decodeTokPerS']) {
    const v = r[key];
    const n =
      num(v) ??
      (v !== null && typeof v === 'object'
        ? (num((v as Record<string, unknown>).median) ?? num((v as Record<string, unknown>).mean))
        : null);
    if (n !== null) return n;
  }
  return null;
}

/**
 * Measured points from a bench JSON file: one record, an array of them, or {records: [...]}. Reads
 * whichever fields exist: tokPerS (or outputTokPerS / decodeTokPerS), batch or concurrency (default
 * 1), inLen + outLen. Records without a throughput are skipped.
 */
export function measuredPoints(json: unknown): MeasuredPoint[] {
  const obj = json !== null && typeof json === 'object' ? (json as Record<string, unknown>) : {};
  const list: unknown[] = Array.isArray(json) ? json : Array.isArray(obj.records) ? obj.records : [json];
  const out: MeasuredPoint[] = [];
  list.forEach((item, i) => {
    if (item === null || typeof item !== 'object') return;
    const r = item as Record<string, unknown>;
    const tokPerS = tokPerSOf(r);
    if (tokPerS === null || tokPerS <= 0) return;
    const batch = num(r.batch) ?? num(r.concurrency) ?? num(r.numSeqs) ?? 1;
    const inLen = num(r.inLen) ?? num(r.promptLen);
    const outLen = num(r.outLen) ?? num(r.genLen);
    const label = [r.engine, r.model, r.device].filter((x) => typeof x === 'string').join(' ') || `record ${i}`;
    out.push({
      label,
      tokPerS,
      batch: Math.max(1, Math.round(batch)),
      contextLen: inLen !== null && outLen !== null ? Math.max(1, Math.round(inLen + outLen / 2)) : null,
    });
  });
  return out;
}

export interface MeasuredComparison extends MeasuredPoint {
  readonly estimatedTokPerS: number;
  /** measured / estimated (1 = at the roofline). */
  readonly ratio: number;
}

export function compareMeasured(o: PlanOptions, points: readonly MeasuredPoint[]): MeasuredComparison[] {
  return points.map((p) => {
    const est = decodeEstimate(o, p.batch, p.contextLen ?? o.contextLen).tokPerS;
    return { ...p, estimatedTokPerS: est, ratio: p.tokPerS / est };
  });
}
