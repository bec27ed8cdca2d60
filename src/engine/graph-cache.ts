// GraphCache: one recorded forward pass per decode batch-size bucket (1, 2, 4, 8, 16, 32, then every
// 16 up to maxNumSeqs), captured at start-up over the batch builder's fixed input tensors through the
// backend's optional `graphs` capability (CUDA graphs on the GPU). A pure-decode step uploads its
// inputs padded to the bucket and replays one recording. Prefill and mixed steps never come here:
// ModelRunner runs them eagerly. Never allocates device memory after capture.
import type { BackendGraphs, KvLayer, Tensor } from '../runtime/backend.js';
import type { CausalLM } from '../model/types.js';
import { invariant } from '../util/invariant.js';
import type { BatchBuilder, BuiltBatch } from './batch-builder.js';
import type { SchedulerOutput } from './scheduler.js';

/** Buckets for up to maxNumSeqs sequences: 1, 2, 4, 8, 16, 32, 48, 64, ... and maxNumSeqs itself. */
export function decodeBuckets(maxNumSeqs: number): number[] {
  invariant(Number.isInteger(maxNumSeqs) && maxNumSeqs >= 1, () => `decodeBuckets: maxNumSeqs ${maxNumSeqs}`);
  const out: number[] = [];
  for (const b of [1, 2, 4, 8, 16, 32]) if (b <= maxNumSeqs) out.push(b);
  for (let b = 48; b <= maxNumSeqs; b += 16) out.push(b);
  if (out.at(-1) !== maxNumSeqs) out.push(maxNumSeqs);
  return out;
}

/** True when every scheduled entry computes exactly one token and samples it (a decode step). */
export function isPureDecode(out: SchedulerOutput): boolean {
  return out.scheduled.length > 0 && out.scheduled.every((e) => e.numTokens === 1 && e.sample);
}

export interface GraphStepResult {
  /** f32 [numRealRows, V]: the real rows' logits (padding rows cut off). */
  readonly logits: Tensor;
  readonly logitsFor: BuiltBatch['logitsFor'];
  readonly bucket: number;
}

/** Distinguishes the recordings of GraphCaches that share a backend (several engines on one model). */
let nextCacheId = 0;

export class GraphCache {
  readonly buckets: readonly number[];
  /** This cache's recording keys: decode:<bucket>@<id>. */
  private readonly id = nextCacheId++;
  /** Replays per bucket (for tests and stats). */
  readonly replays = new Map<number, number>();
  private readonly graphs: BackendGraphs;
  /** bucket -> the logits tensor its recording writes (f32 [bucket, V]). */
  private readonly logitsOf = new Map<number, Tensor>();
  private readonly rowViews = new Map<string, Tensor>();
  private disposed = false;

  constructor(
    private readonly model: CausalLM,
    private readonly kvCache: readonly KvLayer[],
    private readonly builder: BatchBuilder,
  ) {
    const graphs = model.backend.graphs;
    invariant(graphs !== undefined, 'GraphCache needs a backend with graphs');
    this.graphs = graphs;
    const cap = Math.min(builder.opts.maxNumSeqs, builder.opts.maxNumTokens, model.maxLogitsPerStep ?? model.maxTokensPerStep);
    this.buckets = decodeBuckets(cap);
  }

  key(bucket: number): string {
    return `decode:${bucket}@${this.id}`;
  }

  /**
   * Warm up and capture every bucket. Where the backend asks for it (CUDA), each bucket first runs
   * once eagerly on an all-padding batch (slot -1: the KV cache is not written) so that lazy module
   * loading and library heuristics happen outside capture; then its forward pass is recorded. On failure every recording is dropped.
   */
  captureAll(): void {
    try {
      for (const bucket of this.buckets) {
        const built = this.builder.buildDecodePadded(null, bucket);
        if (this.graphs.warmupBeforeCapture) this.model.forward(built.inputs, this.kvCache); // warm-up, eager
        let logits: Tensor | null = null;
        this.graphs.capture(this.key(bucket), () => {
          logits = this.model.forward(built.inputs, this.kvCache);
        });
        invariant(logits !== null, 'capture did not run forward');
        this.logitsOf.set(bucket, logits);
      }
    } catch (e) {
      this.dropRecordings();
      throw e;
    }
  }

  /** Smallest bucket holding numSeqs rows, or null when none does. */
  bucketFor(numSeqs: number): number | null {
    for (const bucket of this.buckets) if (bucket >= numSeqs) return bucket;
    return null;
  }

  /** Whether run(out) applies: a pure-decode step that fits a captured bucket. */
  canRun(out: SchedulerOutput): boolean {
    if (this.disposed || !isPureDecode(out)) return false;
    const bucket = this.bucketFor(out.scheduled.length);
    return bucket !== null && this.logitsOf.has(bucket);
  }

  /** Upload the padded inputs and replay the bucket's recording; enqueues only. */
  run(out: SchedulerOutput): GraphStepResult {
    invariant(this.canRun(out), 'GraphCache.run on a step it cannot run');
    const S = out.scheduled.length;
    const bucket = this.bucketFor(S)!;
    const built = this.builder.buildDecodePadded(out, bucket);
    this.graphs.replay(this.key(bucket));
    this.replays.set(bucket, (this.replays.get(bucket) ?? 0) + 1);
    const full = this.logitsOf.get(bucket)!;
    return { logits: S === bucket ? full : this.rowsView(full, S), logitsFor: built.logitsFor, bucket };
  }

  /** Drop the recordings (before the tensors they touch are freed). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.dropRecordings();
  }

  private dropRecordings(): void {
    // Only this cache's: another engine on the same backend keeps replaying its own.
    for (const bucket of this.buckets) this.graphs.delete(this.key(bucket));
    this.logitsOf.clear();
    this.rowViews.clear();
  }

  /** f32 [S, V] view of the first S rows of a bucket's logits. */
  private rowsView(full: Tensor, S: number): Tensor {
    const key = `${full.shape[0]}:${S}`;
    let v = this.rowViews.get(key);
    if (v === undefined) {
      v = this.model.backend.view(full, [S, full.shape[1]!], 0);
      this.rowViews.set(key, v);
    }
    return v;
  }
}
