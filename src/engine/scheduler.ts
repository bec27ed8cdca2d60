// Scheduler: continuous batching. Each step it hands out a token budget (maxNumBatchedTokens) to
// running sequences first (decode or the next prefill chunk), then admits waiting ones in
// (priority,) arrival order; when KV blocks run out it preempts from the tail and recomputes later.
// Output: the scheduled sequences in batch order (numTokens each; block tables are their blockIds)
// + preempted/finished ids. It never touches a device.
import { invariant } from '../util/invariant.js';
import type { FinishReason } from './sampling-params.js';
import type { KvCacheManager } from './kv/kv-cache-manager.js';
import type { Request, Sequence } from './request.js';

export interface SchedulerConfig {
  /** Token budget of one step (prefill chunks + decodes). */
  readonly maxNumBatchedTokens: number;
  /** Most sequences running at once (= most logits rows per step). */
  readonly maxNumSeqs: number;
  /** Longest sequence (prompt + output) accepted. */
  readonly maxModelLen: number;
  /** Split long prefills over steps (default true); off: a prompt must fit one step's budget. */
  readonly enableChunkedPrefill?: boolean;
  /** 'fcfs' ignores request priority; 'priority' orders by (priority, arrival). Default 'fcfs'. */
  readonly policy?: 'fcfs' | 'priority';
}

export interface ScheduledSequence {
  readonly seq: Sequence;
  /** Tokens computed this step: seq.tokenIds[numComputedBefore .. numComputedBefore + numTokens). */
  readonly numTokens: number;
  readonly numComputedBefore: number;
  /**
   * True when this step reaches the end of the sequence, so its last token's logits are sampled
   * (never for an embedding request: its rows are pooled instead, see pooling.ts).
   */
  readonly sample: boolean;
}

export interface SchedulerOutput {
  /** In batch order. */
  readonly scheduled: readonly ScheduledSequence[];
  /** Sum of scheduled[i].numTokens (each entry's block table is its seq.blockIds). */
  readonly totalNumScheduledTokens: number;
  readonly preemptedSeqIds: readonly string[];
  /** Sequences finished (any reason) since the previous schedule(). */
  readonly finishedSeqIds: readonly string[];
}

export class Scheduler {
  readonly config: Required<SchedulerConfig>;
  readonly kv: KvCacheManager;
  /** Sorted by (priority, arrival, index); preempted sequences re-enter here. */
  private readonly waiting: Sequence[] = [];
  /** Admission order; the tail is preempted first. */
  private readonly running: Sequence[] = [];
  private finishedSinceSchedule: string[] = [];
  private numPreemptionsTotal = 0;

  constructor(config: SchedulerConfig, kv: KvCacheManager) {
    this.config = { enableChunkedPrefill: true, policy: 'fcfs', ...config };
    this.kv = kv;
    invariant(this.config.maxNumBatchedTokens > 0 && this.config.maxNumSeqs > 0, 'scheduler budgets must be positive');
    invariant(
      this.config.enableChunkedPrefill || this.config.maxNumBatchedTokens >= this.config.maxModelLen,
      'without chunked prefill maxNumBatchedTokens must be >= maxModelLen',
    );
    invariant(kv.numTotalBlocks * kv.blockSize >= this.config.maxModelLen, 'the KV pool must hold one sequence of maxModelLen');
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numPreemptions(): number {
    return this.numPreemptionsTotal;
  }

  hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0 || this.finishedSinceSchedule.length > 0;
  }

  /** Running then waiting sequences (for tests and stats). */
  sequences(): Sequence[] {
    return [...this.running, ...this.waiting];
  }

  addRequest(req: Request): void {
    this.enqueue(req.sequences[0]!);
  }

  schedule(): SchedulerOutput {
    const scheduled: ScheduledSequence[] = [];
    const bySeq = new Map<Sequence, number>();
    const preempted: string[] = [];
    let budget = this.config.maxNumBatchedTokens;

    const unschedule = (victim: Sequence): void => {
      const k = bySeq.get(victim);
      if (k === undefined) return;
      budget += scheduled[k]!.numTokens;
      scheduled.splice(k, 1);
      bySeq.delete(victim);
      for (let j = k; j < scheduled.length; j++) bySeq.set(scheduled[j]!.seq, j);
    };

    // 1. Running sequences: decodes and continuing prefill chunks.
    for (let i = 0; i < this.running.length && budget > 0; ) {
      const seq = this.running[i]!;
      const numNew = Math.min(seq.numUncomputedTokens, budget);
      invariant(numNew > 0, () => `running ${seq.seqId} has nothing to compute`);
      let selfPreempted = false;
      while (!this.kv.allocateSlots(seq, numNew)) {
        const victim = this.pickVictim();
        unschedule(victim);
        this.preempt(victim);
        preempted.push(victim.seqId);
        if (victim === seq) {
          selfPreempted = true;
          break;
        }
      }
      if (selfPreempted) break;
      i = this.running.indexOf(seq); // a priority victim may have sat before seq
      bySeq.set(seq, scheduled.length);
      scheduled.push({ seq, numTokens: numNew, numComputedBefore: seq.numComputedTokens, sample: samples(seq, numNew) });
      budget -= numNew;
      i++;
    }

    // 2. Waiting sequences, in order, while budget, seats and blocks last (none after a preemption).
    if (preempted.length === 0) {
      while (this.waiting.length > 0 && budget > 0 && this.running.length < this.config.maxNumSeqs) {
        const seq = this.waiting[0]!;
        // Mean pooling needs every prompt row's hidden state, so it never starts from cached blocks.
        const computed = seq.blockIds.length === 0 && seq.request.pooling !== 'mean' ? this.kv.findComputedBlocks(seq) : [];
        const numComputed = computed.length > 0 ? computed.length * this.kv.blockSize : seq.numComputedTokens;
        const numUncomputed = seq.numTokens - numComputed;
        if (!this.config.enableChunkedPrefill && numUncomputed > budget) break;
        const numNew = Math.min(numUncomputed, budget);
        if (!this.kv.allocateSlots(seq, numNew, computed)) break;
        this.waiting.shift();
        if (!seq.scheduledOnce) {
          seq.scheduledOnce = true;
          seq.numCachedPromptTokens = Math.min(numComputed, seq.numPromptTokens);
          this.kv.recordPrefixQuery(seq.numTokens, numComputed);
        }
        seq.status = 'running';
        this.running.push(seq);
        bySeq.set(seq, scheduled.length);
        scheduled.push({ seq, numTokens: numNew, numComputedBefore: seq.numComputedTokens, sample: samples(seq, numNew) });
        budget -= numNew;
      }
    }

    let total = 0;
    for (const s of scheduled) total += s.numTokens;
    const finishedSeqIds = this.finishedSinceSchedule;
    this.finishedSinceSchedule = [];
    return { scheduled, totalNumScheduledTokens: total, preemptedSeqIds: preempted, finishedSeqIds };
  }

  /**
   * Apply a step's results: advance computed tokens, publish full blocks to the prefix cache,
   * append sampled tokens (sampled.get(seq) for every scheduled entry with sample = true), and
   * release n > 1 children once child 0 has computed the prompt. Stop checks are the caller's.
   */
  update(output: SchedulerOutput, sampled: ReadonlyMap<Sequence, number>): void {
    for (const s of output.scheduled) {
      const seq = s.seq;
      if (seq.status !== 'running') continue; // finished (aborted) while the step ran
      seq.numComputedTokens = s.numComputedBefore + s.numTokens;
      this.kv.cacheComputedBlocks(seq);
      if (s.sample) {
        const tok = sampled.get(seq);
        invariant(tok !== undefined, () => `no sampled token for ${seq.seqId}`);
        seq.tokenIds.push(tok);
      }
      const req = seq.request;
      if (seq.index === 0 && req.pendingChildren.length > 0 && seq.numComputedTokens >= seq.numPromptTokens) {
        for (const c of req.pendingChildren) this.enqueue(c);
        req.pendingChildren = [];
      }
    }
  }

  /** Finish one sequence (stop, length, abort, error): free its blocks, drop it from the queues. */
  finish(seq: Sequence, reason: FinishReason): void {
    if (seq.status === 'finished') return;
    this.kv.free(seq);
    removeFrom(this.running, seq);
    removeFrom(this.waiting, seq);
    const req = seq.request;
    if (req.pendingChildren.includes(seq)) req.pendingChildren = req.pendingChildren.filter((c) => c !== seq);
    seq.status = 'finished';
    seq.finishReason = reason;
    this.finishedSinceSchedule.push(seq.seqId);
  }

  /** Finish every unfinished sequence of a request (abort or error), pending children included. */
  finishRequest(req: Request, reason: FinishReason): void {
    for (const s of req.sequences) this.finish(s, reason);
    req.pendingChildren = [];
  }

  private enqueue(seq: Sequence): void {
    const key = this.keyOf(seq);
    let lo = 0;
    let hi = this.waiting.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.keyOf(this.waiting[mid]!), key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.waiting.splice(lo, 0, seq);
  }

  private keyOf(seq: Sequence): [number, number, number] {
    const prio = this.config.policy === 'priority' ? seq.request.priority : 0;
    return [prio, seq.request.arrivalOrder, seq.index];
  }

  /** FCFS: the last admitted running sequence; priority: the lowest-priority, latest one. */
  private pickVictim(): Sequence {
    invariant(this.running.length > 0, 'no running sequence to preempt');
    if (this.config.policy === 'fcfs') return this.running[this.running.length - 1]!;
    let victim = this.running[0]!;
    for (const s of this.running) if (compareKeys(this.keyOf(s), this.keyOf(victim)) > 0) victim = s;
    return victim;
  }

  private preempt(seq: Sequence): void {
    this.kv.free(seq);
    removeFrom(this.running, seq);
    seq.numComputedTokens = 0;
    seq.status = 'preempted';
    seq.numPreemptions++;
    this.numPreemptionsTotal++;
    this.enqueue(seq);
  }
}

/** Whether a chunk of numNew tokens ends the sequence and is sampled (embedding requests never are). */
function samples(seq: Sequence, numNew: number): boolean {
  return numNew === seq.numUncomputedTokens && seq.request.pooling === null;
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function removeFrom(arr: Sequence[], seq: Sequence): void {
  const i = arr.indexOf(seq);
  if (i >= 0) arr.splice(i, 1);
}
