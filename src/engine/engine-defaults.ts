// The engine's defaults, named once. `serve` runs with them; `generate`, the golden tests and every
// benchmark build their Engine from the same values (overriding only what they must, and recording
// it), so all of them run serving's path. Model-dependent caps are applied in engine-config.ts.
import { freemem } from 'node:os';
import type { CausalLM } from '../model/types.js';
import type { Backend } from '../runtime/backend.js';
import { defaultKvCacheBytes } from './kv/kv-sizing.js';

export const ENGINE_DEFAULTS = Object.freeze({
  /** Tokens per KV block. */
  blockSize: 16,
  /** Token budget per step; capped by the model's workspace (CausalLM.maxTokensPerStep). */
  maxNumBatchedTokens: 2048,
  /** Sequences per step; capped by the model's logits rows and the token budget. */
  maxNumSeqs: 64,
  enableChunkedPrefill: true,
  enablePrefixCaching: true,
  schedulingPolicy: 'fcfs' as 'fcfs' | 'priority',
  /** Sample on the device when the backend can (CUDA) and no row needs logprobs or bias. */
  deviceSampling: true,
  /**
   * Decode-step graphs: 'auto' replays them where the backend's graphs say so by default
   * (BackendGraphs.decodeByDefault: the CPU yes, CUDA not until its replay has passed on a device).
   */
  decodeGraphs: 'auto' as boolean | 'auto',
  /**
   * Admission (admission.ts): requests waiting to be scheduled before server_overloaded, per sequence
   * slot and at least; and the estimated queue wait beyond which a new request is shed (seconds;
   * leaves most of a typical 60 s client timeout for the generation itself).
   */
  waitingRequestsPerSeq: 2,
  minMaxWaitingRequests: 64,
  maxQueueWaitSeconds: 20,
  /** Grammar masks applied on the device (CUDA); off until the kernel has run on a GPU. */
  deviceGrammarMasks: false,
  /** Share of free memory the KV pool takes when no budget is given: the host is shared with everything else. */
  kvCacheShareHost: 0.25,
  kvCacheShareDevice: 0.9,
});

export interface KvBudget {
  readonly kvCacheBytes: number;
  readonly share: number;
  readonly freeBytes: number;
  readonly where: 'host' | 'device';
}

/** Free memory where the KV pool will live: the device's on CUDA, the host's otherwise. */
function freeBytesFor(backend: Backend): { freeBytes: number; where: 'host' | 'device' } {
  const dev = (backend as Partial<{ deviceMemory(): { freeBytes: number } }>).deviceMemory;
  if (typeof dev === 'function') return { freeBytes: dev.call(backend).freeBytes, where: 'device' };
  return { freeBytes: freemem(), where: 'host' };
}

/**
 * serve's KV budget when none is named: a share of the memory free after loading, capped at what
 * maxNumSeqs sequences of maxModelLen tokens could use (kv-sizing.ts).
 */
export function defaultKvBudget(model: CausalLM, o: { share?: number; maxModelLen?: number; maxNumSeqs?: number } = {}): KvBudget {
  const { freeBytes, where } = freeBytesFor(model.backend);
  const share = o.share ?? (where === 'device' ? ENGINE_DEFAULTS.kvCacheShareDevice : ENGINE_DEFAULTS.kvCacheShareHost);
  const maxLen = o.maxModelLen ?? model.config.maxPositionEmbeddings;
  const kvCacheBytes = defaultKvCacheBytes({
    freeBytes,
    share,
    kvBytesPerToken: model.kvBytesPerToken(),
    blockSize: ENGINE_DEFAULTS.blockSize,
    maxUsefulTokens: maxLen * (o.maxNumSeqs ?? ENGINE_DEFAULTS.maxNumSeqs),
  });
  return { kvCacheBytes, share, freeBytes, where };
}

/** Blocks that hold `numSeqs` sequences of `numTokens` tokens each, none shared. */
export function numBlocksFor(numSeqs: number, numTokens: number, blockSize: number = ENGINE_DEFAULTS.blockSize): number {
  return numSeqs * Math.ceil(numTokens / blockSize);
}
