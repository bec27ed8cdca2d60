// ModelRunner: runs one step on the device. Builds the batch (BatchBuilder), calls CausalLM.forward
// over the paged KV cache, and turns the logits rows into one sampled token per sampling sequence:
// device argmax when every sampler is plain greedy, device sampling (device-sampling.ts) when the
// backend offers it and no row needs logprobs or bias (nor a grammar, unless deviceGrammarMasks and
// the backend masks on the device), otherwise the f32 logits are read back and each sequence's
// sampler (sampler.ts) picks. Grammar masks of constrained rows are computed on the JS thread while
// the forward pass runs elsewhere: on the device (CUDA enqueues), or on the CPU backend's worker,
// which such a read asks for even when the step is small (one stream), so masks cost no step time
// when they take less than the pass.
// With decodeGraphs and a graph-capable backend, pure decode steps replay a per-bucket recording
// (graph-cache.ts); other steps run eagerly. Embedding entries get their final hidden rows read
// back and folded into their pooler (pooling.ts) instead of being sampled. Knows nothing of queues.
import type { KvLayer, Tensor } from '../runtime/backend.js';
import type { CausalLM } from '../model/types.js';
import { invariant } from '../util/invariant.js';
import { BatchBuilder, type HiddenRowsFor } from './batch-builder.js';
import { GraphCache } from './graph-cache.js';
import { bitmaskWords, packTokenBitmasks } from '../runtime/token-bitmask.js';
import {
  deviceEligible,
  deviceMaskRows,
  deviceMaskerOf,
  deviceRow,
  deviceSamplerOf,
  type DeviceMaskingBackend,
  type DeviceSamplingBackend,
} from './device-sampling.js';
import type { EmbeddingPooler } from './pooling.js';
import type { Sequence } from './request.js';
import type { SampledToken, SequenceSampler } from './sampler.js';
import type { ScheduledSequence, SchedulerOutput } from './scheduler.js';

export interface ModelRunnerOptions {
  readonly maxNumTokens: number;
  readonly maxNumSeqs: number;
  readonly maxModelLen: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  /** Sample on the device when the backend can (default true). */
  readonly deviceSampling?: boolean;
  /**
   * Capture one forward pass per decode bucket at start-up and replay it for pure-decode steps,
   * when the backend has `graphs`. 'auto' (the default): where BackendGraphs.decodeByDefault says so.
   * Ignored by backends without graphs.
   */
  readonly decodeGraphs?: boolean | 'auto';
  /**
   * Apply grammar masks on the device (Backend.applyTokenBitmask) so that constrained rows sample
   * there too, when the backend has both sample() and the mask op. Default false: the host sampler
   * masks them (the device path has not yet run on a GPU).
   */
  readonly deviceGrammarMasks?: boolean;
}

export class ModelRunner {
  readonly model: CausalLM;
  readonly kvCache: KvLayer[];
  readonly batchBuilder: BatchBuilder;
  readonly vocabSize: number;
  /** i32 [maxNumSeqs]: device argmax output. */
  private readonly argmaxOut: Tensor;
  private readonly argmaxViews = new Map<number, Tensor>();
  private readonly deviceSampler: DeviceSamplingBackend | null;
  private readonly deviceMasker: DeviceMaskingBackend | null;
  /** Grow-only host buffer the step's packed masks are written into (token-bitmask.ts layout). */
  private maskBuf = new Int32Array(0);
  /**
   * Steps with constrained rows: masks computed, JS-thread time computing them (while the forward
   * pass runs on the CPU backend's worker), and time then still waiting for the logits. A wait near
   * zero means the masks took longer than the pass and added to the step.
   */
  readonly grammarStats = { numSteps: 0, numMasks: 0, maskMs: 0, readWaitMs: 0, numDeviceSteps: 0, numDeviceMaskedRows: 0 };
  /** Decode-step recordings, when enabled and supported (null otherwise). */
  readonly graphCache: GraphCache | null = null;
  private disposed = false;

  constructor(model: CausalLM, opts: ModelRunnerOptions) {
    invariant(
      opts.maxNumTokens <= model.maxTokensPerStep,
      () => `maxNumTokens ${opts.maxNumTokens} exceeds the model's maxTokensPerStep ${model.maxTokensPerStep}`,
    );
    this.model = model;
    this.vocabSize = model.config.vocabSize;
    const b = model.backend;
    this.kvCache = model.allocKvCache(opts.numBlocks, opts.blockSize);
    let builder: BatchBuilder | null = null;
    try {
      builder = new BatchBuilder(b, {
        maxNumTokens: opts.maxNumTokens,
        maxNumSeqs: opts.maxNumSeqs,
        maxBlocksPerSeq: Math.ceil(opts.maxModelLen / opts.blockSize),
        blockSize: opts.blockSize,
      });
      this.argmaxOut = b.alloc([opts.maxNumSeqs], 'i32');
    } catch (e) {
      // Out of memory half way: give back what was taken.
      builder?.dispose();
      for (const layer of this.kvCache) {
        b.free(layer.k);
        b.free(layer.v);
      }
      throw e;
    }
    this.batchBuilder = builder;
    this.deviceSampler = opts.deviceSampling === false ? null : deviceSamplerOf(b);
    this.deviceMasker = this.deviceSampler !== null && opts.deviceGrammarMasks === true ? deviceMaskerOf(b) : null;
    const graphs = opts.decodeGraphs ?? 'auto';
    if (b.graphs !== undefined && (graphs === true || (graphs === 'auto' && b.graphs.decodeByDefault))) {
      const cache = new GraphCache(model, this.kvCache, builder);
      try {
        cache.captureAll();
      } catch (e) {
        this.dispose();
        throw e;
      }
      this.graphCache = cache;
    }
  }

  /**
   * Run one step and sample. samplerOf gives each sampling sequence's sampler; poolerOf each
   * embedding sequence's pooler (required when the step has one). Returns the sampled token per
   * sequence (only for scheduled entries with sample = true).
   */
  async execute(
    out: SchedulerOutput,
    samplerOf: (seq: Sequence) => SequenceSampler,
    poolerOf?: (seq: Sequence) => EmbeddingPooler,
  ): Promise<Map<Sequence, SampledToken>> {
    invariant(!this.disposed, 'model runner used after dispose()');
    const backend = this.model.backend;
    const { logits, logitsFor, hiddenFor } = this.forward(out); // f32 [numLogits, vocab]
    if (hiddenFor.length > 0) await this.pool(hiddenFor, poolerOf);
    const result = new Map<Sequence, SampledToken>();
    if (logitsFor[0] === null) {
      await backend.synchronize(); // placeholder row only: nothing to sample
      return result;
    }
    const samplers = logitsFor.map((e) => samplerOf(e!.seq));
    if (samplers.every((s) => s.argmaxOnly)) {
      const outView = this.argmaxView(logitsFor.length);
      backend.argmax(outView, logits);
      const ids = await backend.readInt32(outView);
      for (let r = 0; r < logitsFor.length; r++) {
        const tokenId = ids[r]!;
        samplers[r]!.recordToken(tokenId);
        result.set(logitsFor[r]!.seq, { tokenId });
      }
      return result;
    }
    const masksOnDevice = this.deviceMasker !== null;
    if (this.deviceSampler !== null && samplers.every((s) => deviceEligible(s, masksOnDevice))) {
      const outView = this.argmaxView(logitsFor.length);
      const masked = masksOnDevice ? await this.maskOnDevice(logits, logitsFor, samplers) : 0;
      this.deviceSampler.sample(
        outView,
        logits,
        logitsFor.map((e, r) => deviceRow(e!.seq, samplers[r]!)),
      );
      const t1 = performance.now();
      const ids = await backend.readInt32(outView);
      if (masked > 0) this.grammarStats.readWaitMs += performance.now() - t1;
      for (let r = 0; r < logitsFor.length; r++) {
        samplers[r]!.recordToken(ids[r]!);
        result.set(logitsFor[r]!.seq, { tokenId: ids[r]! });
      }
      return result;
    }
    // Starts the forward pass; with constrained rows, off the JS thread (CPU) so masks overlap it.
    const hostRead = backend.read(logits, { overlapHostWork: samplers.some((s) => s.grammar !== null) });
    const t0 = performance.now();
    const masked = await this.prepareMasks(logitsFor, samplers, hostRead);
    const t1 = performance.now();
    const host = await hostRead;
    if (masked > 0) {
      const g = this.grammarStats;
      g.numSteps++;
      g.numMasks += masked;
      g.maskMs += t1 - t0;
      g.readWaitMs += performance.now() - t1;
    }
    invariant(
      host.length === logitsFor.length * this.vocabSize,
      () => `logits of ${host.length} values for ${logitsFor.length} rows of ${this.vocabSize}`,
    );
    for (let r = 0; r < logitsFor.length; r++) result.set(logitsFor[r]!.seq, samplers[r]!.sample(host, r));
    return result;
  }

  /**
   * Masks of this step's constrained rows, computed while the device runs the enqueued forward pass,
   * then applied there for only the rows whose mask forbids something: one packed host array, one
   * upload (the backend's one pinned buffer and async copy). Returns how many rows are constrained.
   */
  private async maskOnDevice(
    logits: Tensor,
    logitsFor: readonly (ScheduledSequence | null)[],
    samplers: readonly SequenceSampler[],
  ): Promise<number> {
    const t0 = performance.now();
    const masked = await this.prepareMasks(logitsFor, samplers, null);
    if (masked === 0) return 0;
    const rows = deviceMaskRows(samplers);
    const g = this.grammarStats;
    if (rows.length > 0) {
      const words = bitmaskWords(this.vocabSize);
      const need = rows.length * (words + 1);
      if (this.maskBuf.length < need) this.maskBuf = new Int32Array(need);
      this.deviceMasker!.applyTokenBitmask(logits, packTokenBitmasks(rows, words, this.maskBuf), rows.length, words);
    }
    g.numSteps++;
    g.numDeviceSteps++;
    g.numMasks += masked;
    g.numDeviceMaskedRows += rows.length;
    g.maskMs += performance.now() - t0;
    return masked;
  }

  /** Grammar masks for this step's constrained rows (overlapping the forward pass); how many. */
  private async prepareMasks(
    logitsFor: readonly (ScheduledSequence | null)[],
    samplers: readonly SequenceSampler[],
    pending: Promise<unknown> | null,
  ): Promise<number> {
    let n = 0;
    for (let r = 0; r < samplers.length; r++) {
      const g = samplers[r]!.grammar;
      if (g === null) continue;
      if (n++ === 0) pending?.catch(() => undefined); // a failed read is reported by its own await
      const seq = logitsFor[r]!.seq;
      await g.prepareMask(seq.tokenIds.slice(seq.numPromptTokens));
    }
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const b = this.model.backend;
    this.graphCache?.dispose(); // recordings go before the tensors they touch
    this.batchBuilder.dispose();
    b.free(this.argmaxOut);
    for (const layer of this.kvCache) {
      b.free(layer.k);
      b.free(layer.v);
    }
  }

  /** Graph replay for a pure-decode step that fits a bucket, an eager forward otherwise. */
  private forward(out: SchedulerOutput): {
    logits: Tensor;
    logitsFor: readonly (ScheduledSequence | null)[];
    hiddenFor: readonly HiddenRowsFor[];
  } {
    if (this.graphCache?.canRun(out)) return { ...this.graphCache.run(out), hiddenFor: [] };
    const { inputs, logitsFor, hiddenFor } = this.batchBuilder.build(out);
    return { logits: this.model.forward(inputs, this.kvCache), logitsFor, hiddenFor };
  }

  /** Read the step's final hidden rows [numHiddenRows, D] and fold each entry's rows into its pooler. */
  private async pool(hiddenFor: readonly HiddenRowsFor[], poolerOf: ((seq: Sequence) => EmbeddingPooler) | undefined): Promise<void> {
    invariant(
      poolerOf !== undefined && this.model.hiddenOutput !== undefined,
      'an embedding step needs poolers and a model with hiddenOutput',
    );
    const last = hiddenFor[hiddenFor.length - 1]!;
    const host = await this.model.backend.read(this.model.hiddenOutput(last.firstRow + last.numRows));
    for (const h of hiddenFor) poolerOf(h.entry.seq).add(host, h.firstRow, h.numRows, h.entry.numComputedBefore === 0);
  }

  private argmaxView(n: number): Tensor {
    let v = this.argmaxViews.get(n);
    if (v === undefined) {
      v = this.model.backend.view(this.argmaxOut, [n], 0);
      this.argmaxViews.set(n, v);
    }
    return v;
  }
}
