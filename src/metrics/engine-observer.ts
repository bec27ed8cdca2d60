// The sink the engine calls for events only it can see (queue time, preemptions, prefix-cache
// lookups, step wall time). The server's ServerMetrics implements it; NULL_ENGINE_OBSERVER ignores
// everything. Every method is optional and must never throw into the engine's step loop.

export interface EngineStepEvent {
  /** Wall time of the whole step (schedule + forward + sample), in seconds. */
  readonly wallSeconds: number;
  /** Tokens sampled in this step, over all requests. */
  readonly numGeneratedTokens: number;
  /** Prompt tokens processed (prefilled) in this step. */
  readonly numPrefillTokens?: number;
  /** Prompt tokens of the requests scheduled for the first time in this step (cached included). */
  readonly numNewPromptTokens?: number;
}

export interface EngineObserver {
  /** A request left the waiting queue for its first schedule (queueSeconds since arrival). */
  onRequestScheduled?(requestId: string, queueSeconds: number): void;
  /** A running request was preempted (its KV freed, to be recomputed). */
  onPreemption?(requestId: string): void;
  /** A prefix-cache lookup: prompt tokens looked up and how many were found cached. */
  onPrefixCacheQuery?(numQueriedTokens: number, numHitTokens: number): void;
  /** One engine step finished. Feeds the live USD per 1k output tokens. */
  onStep?(e: EngineStepEvent): void;
}

export const NULL_ENGINE_OBSERVER: EngineObserver = {};
