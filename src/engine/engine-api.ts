// The engine's face to the server and CLI: submit a request, iterate its outputs, abort it.
// The server depends only on these types (tests put a fault-injecting model under the real engine).

import type { TokenmillError } from '../util/errors.js';
import type { PoolingType } from './pooling.js';
import type { FinishReason, SamplingParams } from './sampling-params.js';

export interface EngineRequest {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly params: SamplingParams;
  /** Lower runs first; ties in arrival order (FCFS). Default 0. */
  readonly priority?: number;
  /** Who pays (API key id or 'anonymous'): cost is totalled per key. */
  readonly accountKey?: string;
  /**
   * Set for an embedding request: the prompt is prefilled and nothing is generated; the one output
   * (finished, 'stop') carries `embedding`, the final hidden states pooled this way. n must be 1;
   * params.maxTokens is ignored.
   */
  readonly pooling?: PoolingType;
  /** The request field the prompt came from ('messages', 'prompt.1', 'input'), named by its 400s. Default 'prompt'. */
  readonly promptParam?: string;
  /**
   * The ticket EngineClient.admit() gave for this request (several engine requests of one HTTP
   * request may share it): generate() then takes the reserved place instead of deciding again.
   */
  readonly admitted?: AdmissionTicket;
}

/** A reserved place among the waiting requests; release() (idempotent) gives it back unused. */
export interface AdmissionTicket {
  release(): void;
}

export interface TokenLogprob {
  readonly tokenId: number;
  readonly logprob: number;
  /** The top alternatives at this position, best first (length = params.logprobs). */
  readonly top: readonly { tokenId: number; logprob: number }[];
}

/** One increment for one choice (index < params.n) of a request. */
export interface EngineOutput {
  readonly requestId: string;
  readonly index: number;
  /** Tokens produced since the last output for this choice. */
  readonly newTokenIds: readonly number[];
  /** Valid UTF-8 text released since the last output (stop strings already cut off). */
  readonly newText: string;
  readonly logprobs: readonly TokenLogprob[] | null;
  readonly finished: boolean;
  readonly finishReason: FinishReason | null;
  /** Totals for the request so far (set on every output). */
  readonly numPromptTokens: number;
  readonly numCachedPromptTokens: number;
  readonly numGeneratedTokens: number;
  /** Cost of this request so far, from metrics/cost.ts (its share of each step's wall time). */
  readonly costUsd: number;
  /** Embedding requests only, on the final output: the pooled hidden state [hiddenSize], not normalised. */
  readonly embedding?: Float32Array;
}

export interface EngineStats {
  readonly numRunning: number;
  readonly numWaiting: number;
  readonly kvCacheUsage: number;
  readonly numFreeBlocks: number;
  readonly numTotalBlocks: number;
  /** Tokens per KV block (the cache-config info gauge's block_size). */
  readonly blockSize?: number;
}

export interface EngineClient {
  /** Model id served (what /v1/models lists). */
  readonly modelId: string;
  readonly maxModelLen: number;
  /** Length of the pooled vectors embedding requests return (the hidden size); absent: no embeddings. */
  readonly embeddingSize?: number;
  /**
   * Start a request; outputs arrive in order and the iterator ends after the output with
   * finished = true for every choice. Aborting (signal or abort()) ends it with finishReason 'abort'
   * within one step and frees its KV blocks. Throws TokenmillError (server_overloaded when the
   * waiting queue is full, context_length_exceeded, engine_dead).
   */
  generate(req: EngineRequest, signal?: AbortSignal): AsyncIterable<EngineOutput>;
  /** The checks generate() makes, without running anything (the render routes' "would it run"). */
  validate(req: EngineRequest): void;
  abort(requestId: string): void;
  /**
   * Reserve a place for a request before preparing it (template, tokens), or throw what generate()
   * would throw for lack of room (server_overloaded with details.retryAfterSeconds, server_draining,
   * engine_dead). Reserved places count as waiting until generate() takes them or they are
   * released. Absent: generate() alone decides.
   */
  admit?(): AdmissionTicket;
  stats(): EngineStats;
  /** Stop accepting; resolve once in-flight work is done or timeoutMs passes (then abort the rest). */
  drain(timeoutMs: number): Promise<void>;
  /** A fatal error, once the engine is dead (then every generate() throws it). */
  readonly fatalError: Error | null;
  /** Call `listener` once when the engine dies (at once if it is dead): the one dead-engine event. */
  onFatal(listener: (e: TokenmillError) => void): void;
  shutdown(): Promise<void>;
}
