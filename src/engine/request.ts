// Request and Sequence: what a user submitted and the n token streams (choices) it fans out into.
// A Sequence is the unit the scheduler and KV cache manager work on; its state machine is
// waiting -> running -> (preempted -> waiting ... ->) finished. Children (index > 0) of an n > 1
// request are released once child 0 has computed the prompt, and then share its full prompt blocks.
import type { EngineRequest } from './engine-api.js';
import type { PoolingType } from './pooling.js';
import type { FinishReason, SamplingParams } from './sampling-params.js';

export type SequenceStatus = 'waiting' | 'running' | 'preempted' | 'finished';

export class Sequence {
  readonly request: Request;
  /** `${requestId}#${index}`: unique within the engine. */
  readonly seqId: string;
  /** Choice index within the request (0 .. n-1). */
  readonly index: number;
  status: SequenceStatus = 'waiting';
  /** Prompt followed by every generated token. */
  readonly tokenIds: number[];
  readonly numPromptTokens: number;
  /** Tokens whose KV is in this sequence's blocks (reset to 0 on preemption: recompute). */
  numComputedTokens = 0;
  /** Physical KV blocks, in position order. */
  blockIds: number[] = [];
  /** Prefix-cache hash chain over the full blocks of tokenIds (extended lazily). */
  readonly blockHashes: number[] = [];
  /** Leading blocks already offered to the prefix cache (reset when the blocks are freed). */
  numCommittedBlocks = 0;
  /** Prompt tokens served from the prefix cache on the first schedule. */
  numCachedPromptTokens = 0;
  /** Set on the first schedule; later schedules (after preemption) do not change it. */
  scheduledOnce = false;
  numPreemptions = 0;
  finishReason: FinishReason | null = null;
  /** Child sequences: the sequence whose prompt blocks they may share. */
  sharePromptFrom: Sequence | null = null;
  /** Wall-clock stamps (ms, the engine's clock); -1 until known. */
  firstScheduledTimeMs = -1;
  firstTokenTimeMs = -1;
  lastTokenTimeMs = -1;
  /** Share of step costs (USD) charged to this sequence so far. */
  costUsd = 0;

  constructor(request: Request, index: number) {
    this.request = request;
    this.index = index;
    this.seqId = `${request.requestId}#${index}`;
    this.tokenIds = request.promptTokenIds.slice();
    this.numPromptTokens = request.promptTokenIds.length;
  }

  get numTokens(): number {
    return this.tokenIds.length;
  }

  get numOutputTokens(): number {
    return this.tokenIds.length - this.numPromptTokens;
  }

  get outputTokenIds(): number[] {
    return this.tokenIds.slice(this.numPromptTokens);
  }

  get isFinished(): boolean {
    return this.status === 'finished';
  }

  /** Tokens still to be computed before the next sample (prefill chunk, recompute, or 1 to decode). */
  get numUncomputedTokens(): number {
    return this.tokenIds.length - this.numComputedTokens;
  }
}

/** What the engine keeps of a submitted EngineRequest (field meanings there), plus its arrival. */
export interface RequestInit
  extends Pick<EngineRequest, 'requestId' | 'promptTokenIds' | 'params' | 'priority' | 'accountKey' | 'pooling'> {
  /** Monotonic arrival counter (FCFS tie-break). */
  readonly arrivalOrder: number;
  readonly arrivalTimeMs: number;
}

export class Request {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly params: SamplingParams;
  readonly priority: number;
  readonly accountKey: string;
  /** Non-null for an embedding request (prefill only, never sampled). */
  readonly pooling: PoolingType | null;
  readonly arrivalOrder: number;
  readonly arrivalTimeMs: number;
  /** All n choices; sequences[i].index === i. */
  readonly sequences: Sequence[];
  /** Children not yet handed to the scheduler (waiting for child 0's prompt to be computed). */
  pendingChildren: Sequence[];

  constructor(init: RequestInit) {
    this.requestId = init.requestId;
    this.promptTokenIds = init.promptTokenIds.slice();
    this.params = init.params;
    this.priority = init.priority ?? 0;
    this.accountKey = init.accountKey ?? 'anonymous';
    this.pooling = init.pooling ?? null;
    this.arrivalOrder = init.arrivalOrder;
    this.arrivalTimeMs = init.arrivalTimeMs;
    const n = Math.max(1, init.params.n);
    this.sequences = [];
    for (let i = 0; i < n; i++) this.sequences.push(new Sequence(this, i));
    this.pendingChildren = this.sequences.slice(1);
    for (const c of this.pendingChildren) c.sharePromptFrom = this.sequences[0]!;
  }

  get isFinished(): boolean {
    return this.sequences.every((s) => s.isFinished);
  }

  get costUsd(): number {
    let c = 0;
    for (const s of this.sequences) c += s.costUsd;
    return c;
  }
}
