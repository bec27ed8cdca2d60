// Opens a model directory as a servable stack: backend (runtime/select.ts), weights (model/loader),
// tokenizer + chat template (the ModelFrontend) and the AsyncEngine with the metrics observer.
// The CLI (serve) and e2e tests call this; the server itself only sees EngineClient + ModelFrontend.

import { AsyncEngine } from '../engine/async-engine.js';
import { defaultKvBudget, ENGINE_DEFAULTS } from '../engine/engine-defaults.js';
import type { KvEventSink } from '../engine/kv/kv-events.js';
import type { EngineObserver } from '../metrics/engine-observer.js';
import { environmentFingerprint, systemFingerprintOf } from '../metrics/fingerprint.js';
import { loadModel } from '../model/loader.js';
import type { KvCacheDTypeOption } from '../model/decoder-model.js';
import type { QuantizeMode } from '../model/quantize.js';
import { loadTokenizer } from '../model/tokenizer.js';
import type { Backend } from '../runtime/backend.js';
import { createReferenceBackend, selectBackend, type DeviceChoice, type SelectOptions } from '../runtime/select.js';
import { isTokenmillError } from '../util/errors.js';
import { withoutUndefined } from '../util/defined.js';
import { log } from '../util/logger.js';
import { TokenizerFrontend } from './model-frontend.js';

export interface ModelStackOptions {
  readonly dir: string;
  /** What /v1/models lists. */
  readonly modelId: string;
  readonly device?: DeviceChoice;
  readonly numThreads?: number;
  /** Further backend options (ISA, async threshold, CPU pool, CUDA dtype and graphs) the CLI read from the environment. */
  readonly backendOptions?: Omit<SelectOptions, 'device'>;
  /** The TOKENMILL_* variables in effect, recorded in the environment fingerprint (FingerprintOptions.env). */
  readonly env?: Readonly<Record<string, string>>;
  /** Weight-only quantization of the linear layers (model/quantize.ts); default none. */
  readonly quantize?: QuantizeMode;
  /** KV cache dtype (DecoderModelOptions.kvCacheDType); default auto = the compute dtype. */
  readonly kvCacheDType?: KvCacheDTypeOption;
  /** KV cache budget in bytes; default: kvCacheShare of the memory free after loading. */
  readonly kvCacheBytes?: number;
  /** Share of free memory (host, or device on CUDA) for the KV pool when kvCacheBytes is unset. */
  readonly kvCacheShare?: number;
  readonly maxNumSeqs?: number;
  readonly maxModelLen?: number;
  /** Admission bounds (engine/admission.ts): waiting requests, and estimated queue wait in seconds. */
  readonly maxWaitingRequests?: number;
  readonly maxQueueWaitSeconds?: number;
  readonly usdPerHour?: number;
  /** 'priority' honours each request's priority field (lower first); default FCFS. */
  readonly schedulingPolicy?: 'fcfs' | 'priority';
  readonly observer?: EngineObserver;
  /** Chat template source replacing the model's own (serve --chat-template, resolved by the CLI). */
  readonly chatTemplate?: string;
  /** Decode-step graphs (EngineOptions.decodeGraphs: true, false or 'auto', the default). */
  readonly decodeGraphs?: boolean | 'auto';
  /** Grammar masks on the device (EngineOptions.deviceGrammarMasks; CUDA only). */
  readonly deviceGrammarMasks?: boolean;
  /** Where the engine's prefix-cache events go (serve --kv-events-endpoint). */
  readonly kvEvents?: KvEventSink;
}

export interface ModelStack {
  readonly engine: AsyncEngine;
  readonly frontend: TokenizerFrontend;
  /** Which backend runs the model and why. */
  readonly backendReason: string;
  /** The environment fingerprint's id (doctor --model DIR prints the same) and the system_fingerprint derived from it. */
  readonly fingerprintId: string;
  readonly systemFingerprint: string;
  close(): Promise<void>;
}

function pickBackend(device: DeviceChoice, opts: Omit<SelectOptions, 'device'>): { backend: Backend; reason: string } {
  try {
    return selectBackend({ ...opts, device });
  } catch (e) {
    // auto with neither the CPU addon nor CUDA: the reference backend still serves (slowly).
    if (device === 'auto' && isTokenmillError(e) && e.code === 'backend_unavailable') {
      log.warn(`${e.message}; falling back to the (slow) reference backend`);
      return { backend: createReferenceBackend(), reason: `reference (fallback: ${e.message})` };
    }
    throw e;
  }
}

export async function openModelStack(o: ModelStackOptions): Promise<ModelStack> {
  const threads = o.numThreads !== undefined ? { numThreads: o.numThreads } : {};
  const { backend, reason } = pickBackend(o.device ?? 'auto', { ...o.backendOptions, ...threads });
  // Hashed while the weights load (it streams the same files; the page cache serves the second read).
  const fingerprint = environmentFingerprint({ modelDir: o.dir, ...(o.env !== undefined ? { env: o.env } : {}) });
  fingerprint.catch(() => undefined); // awaited below; a load failure first must not leave it unhandled
  const tokenizer = loadTokenizer(o.dir);
  const loaded = await loadModel(o.dir, backend, {
    ...(o.quantize !== undefined ? { quantize: o.quantize } : {}),
    ...(o.kvCacheDType !== undefined ? { kvCacheDType: o.kvCacheDType } : {}),
  });
  const frontend = new TokenizerFrontend(tokenizer, {
    eosTokenIds: loaded.config.eosTokenIds,
    vocabSize: loaded.config.vocabSize,
    ...(o.chatTemplate !== undefined ? { chatTemplate: o.chatTemplate } : {}),
  });
  let kvCacheBytes = o.kvCacheBytes;
  if (kvCacheBytes === undefined) {
    const budget = defaultKvBudget(loaded.model, {
      ...(o.kvCacheShare !== undefined ? { share: o.kvCacheShare } : {}),
      ...(o.maxModelLen !== undefined ? { maxModelLen: o.maxModelLen } : {}),
      ...(o.maxNumSeqs !== undefined ? { maxNumSeqs: o.maxNumSeqs } : {}),
    });
    kvCacheBytes = budget.kvCacheBytes;
    const seqs = o.maxNumSeqs ?? ENGINE_DEFAULTS.maxNumSeqs;
    log.info(
      `KV cache: ${(kvCacheBytes / 2 ** 20).toFixed(1)} MiB (${budget.share} of ${(budget.freeBytes / 2 ** 30).toFixed(2)} GiB ` +
        `free ${budget.where} memory, capped at what ${seqs} full-length sequences need); set --kv-cache-memory to choose`,
    );
  }
  const engine = new AsyncEngine({
    modelId: o.modelId,
    model: loaded.model,
    kvCacheBytes,
    eosTokenIds: loaded.config.eosTokenIds,
    detokenizer: frontend.detokenizerFactory(),
    grammarVocab: tokenizer,
    usdPerHour: o.usdPerHour ?? 0,
    ...withoutUndefined({
      maxNumSeqs: o.maxNumSeqs,
      maxModelLen: o.maxModelLen,
      maxWaitingRequests: o.maxWaitingRequests,
      maxQueueWaitSeconds: o.maxQueueWaitSeconds,
      observer: o.observer,
      decodeGraphs: o.decodeGraphs,
      kvEvents: o.kvEvents,
      deviceGrammarMasks: o.deviceGrammarMasks,
      schedulingPolicy: o.schedulingPolicy,
    }),
  });
  frontend.limitTextTokens(engine.maxModelLen);
  const fingerprintId = (await fingerprint).fingerprintId;
  const systemFingerprint = systemFingerprintOf(fingerprintId, {
    backend: backend.name,
    quantize: o.quantize ?? null,
    kvCacheDType: o.kvCacheDType ?? 'auto',
  });
  return {
    engine,
    frontend,
    backendReason: reason,
    fingerprintId,
    systemFingerprint,
    close: async () => {
      await engine.shutdown();
      await frontend.close();
    },
  };
}
