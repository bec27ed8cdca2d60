// The real serving stack for server tests: a seeded tiny Llama (2 layers, vocab 258 = bytes + BOS +
// EOS, default init: logits flat enough that seeded sampling varies) under the real AsyncEngine, behind the
// byte-level FakeFrontend (tokenizer and chat template only). `RecordingEngine` is a spy over the
// real engine (it records what the server submitted and aborted; it decides nothing). `ModelFault`
// injects a fatal fault below the engine (the model's forward pass throws), so the engine's own
// death path runs. `greedyText` computes the expected greedy output with generate() on a second copy
// of the same weights.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncEngine, type AsyncEngineOptions } from '../../src/engine/async-engine.js';
import type { AdmissionTicket, EngineClient, EngineOutput, EngineRequest, EngineStats } from '../../src/engine/engine-api.js';
import { ENGINE_DEFAULTS } from '../../src/engine/engine-defaults.js';
import { generate } from '../../src/engine/generate.js';
import type { GrammarVocabSource } from '../../src/engine/grammar/grammar-vocab.js';
import { detokenizerFor } from '../../src/engine/output-processor.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { bytesToByteLevel } from '../../src/model/tokenizer-bytes.js';
import type { CausalLM } from '../../src/model/types.js';
import type { Backend } from '../../src/runtime/backend.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { TokenmillError } from '../../src/util/errors.js';
import { BOS, EOS } from './byte-frontend.js';

export const TINY_MODEL_ID = 'tiny-model';
export const TINY_MAX_MODEL_LEN = 256;

/** The byte vocabulary the FakeFrontend encodes to: ids 0..255 are bytes, BOS and EOS are special. */
export const BYTE_TOKENS = {
  tokenBytes: (id: number): Uint8Array => (id < 256 ? Uint8Array.of(id) : new Uint8Array(0)),
  isSpecial: (id: number): boolean => id >= 256,
  stripsLeadingSpace: false,
};

/** The byte vocabulary as the grammar engine reads it (byte-level spelling; BOS and EOS special). */
export const BYTE_GRAMMAR_VOCAB: GrammarVocabSource = {
  ...BYTE_TOKENS,
  vocabSize: 258,
  spelling: 'byte_level',
  tokenString: (id: number): string | null => (id < 256 ? bytesToByteLevel(Uint8Array.of(id)) : id === BOS ? '<s>' : '</s>'),
};

/**
 * Fault injection for the real engine: wraps the model so that its forward pass throws a fatal
 * cuda_error (as the CUDA backend does after a device fault) from a given call on, or once armed.
 * Everything above the model (scheduler, AsyncEngine's death path, the server) is the real code.
 */
export class ModelFault {
  numForwards = 0;
  private failAt: number | null;

  /** failAtForward: the 1-based forward call that fails first (default: only once armed). */
  constructor(failAtForward?: number) {
    this.failAt = failAtForward ?? null;
  }

  /** The next forward pass fails, and every one after it. */
  arm(): void {
    this.failAt = this.numForwards + 1;
  }

  wrap(model: CausalLM): CausalLM {
    const fault = this;
    return new Proxy(model, {
      get(target, prop) {
        if (prop === 'forward') {
          return (...args: Parameters<CausalLM['forward']>) => {
            fault.numForwards++;
            if (fault.failAt !== null && fault.numForwards >= fault.failAt) throw new TokenmillError('cuda_error', 'simulated CUDA fault');
            return target.forward(...args);
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }
}

export interface TinyEngineOptions extends Partial<AsyncEngineOptions> {
  /** The tiny model's context (max_position_embeddings) and the engine's maxModelLen; default TINY_MAX_MODEL_LEN. */
  contextLen?: number;
  /** Inject a fatal fault in the model's forward pass. */
  fault?: ModelFault;
  /**
   * Every request writes exactly this text, then EOS: its constraint becomes the literal string (an
   * xgrammar const_string), so the real model, grammar, sampler and detokenizer produce it. For
   * tests of what the server does with a known output (tool calls, reasoning), which random weights
   * never write on their own.
   */
  script?: string;
}

interface TinyWeights {
  dir: string;
  backend: Backend;
  reference: CausalLM;
}
const weights = new Map<number, Promise<TinyWeights>>();

/** The tiny model's weights on disk (one seeded copy per context length and process) and a loaded reference copy. */
function tinyWeights(contextLen = TINY_MAX_MODEL_LEN): Promise<TinyWeights> {
  let w = weights.get(contextLen);
  if (w === undefined) {
    w = (async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tm-server-tiny-'));
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      const config = {
        ...MODEL_PRESETS['tiny-llama']!.config,
        vocab_size: 258,
        bos_token_id: BOS,
        eos_token_id: EOS,
        max_position_embeddings: contextLen,
      };
      writeRandomModel(dir, config, { seed: 8, tokenizer: false });
      const backend = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 1 }) : createReferenceBackend();
      const reference = (await loadModel(dir, backend)).model;
      return { dir, backend, reference };
    })();
    weights.set(contextLen, w);
  }
  return w;
}

/** The real AsyncEngine on the tiny byte model (a fresh engine and model copy per call). */
export async function tinyRealEngine(o: TinyEngineOptions = {}): Promise<RecordingEngine> {
  const { contextLen, fault, script, ...engineOpts } = o;
  const { dir, backend } = await tinyWeights(contextLen);
  const { model } = await loadModel(dir, backend);
  // The KV pool holds two full-length sequences (at least 256 blocks).
  const numBlocks = Math.max(256, Math.ceil((2 * (contextLen ?? TINY_MAX_MODEL_LEN)) / ENGINE_DEFAULTS.blockSize));
  const engine = new AsyncEngine({
    modelId: TINY_MODEL_ID,
    model: fault ? fault.wrap(model) : model,
    numBlocks,
    detokenizer: detokenizerFor(BYTE_TOKENS),
    usdPerHour: 1,
    ...(script !== undefined ? { grammarVocab: BYTE_GRAMMAR_VOCAB } : {}),
    // The fault sits in forward(), which a decode-graph replay does not call: eager steps only.
    ...(fault ? { decodeGraphs: false } : {}),
    ...engineOpts,
  });
  return new RecordingEngine(engine, () => model.dispose(), script);
}

/** Greedy output for prompt ids, computed outside the server: generate() over the same weights. */
export async function greedy(promptTokenIds: readonly number[], maxTokens: number): Promise<{ text: string; ids: number[] }> {
  const { reference } = await tinyWeights();
  let text = '';
  const ids: number[] = [];
  for await (const ev of generate(reference, BYTE_TOKENS, promptTokenIds, { params: samplingParams({ temperature: 0, maxTokens }) })) {
    text += ev.text;
    ids.push(...ev.tokenIds);
  }
  return { text, ids };
}

export async function greedyText(promptTokenIds: readonly number[], maxTokens: number): Promise<string> {
  return (await greedy(promptTokenIds, maxTokens)).text;
}

export const bytesOf = (s: string): number[] => [...Buffer.from(s, 'utf8')];

/**
 * A spy over the real engine: what the server submitted and which requests ended aborted. With a
 * script (TinyEngineOptions.script) it also sets each request's constraint to that literal text.
 */
export class RecordingEngine implements EngineClient {
  readonly requests: EngineRequest[] = [];
  readonly aborted: string[] = [];
  private readonly abortWaiters: (() => void)[] = [];
  private readonly requestWaiters: (() => void)[] = [];

  constructor(
    readonly inner: AsyncEngine,
    private readonly onShutdown: () => void,
    private readonly script?: string,
  ) {}

  get modelId(): string {
    return this.inner.modelId;
  }
  get maxModelLen(): number {
    return this.inner.maxModelLen;
  }
  get fatalError(): Error | null {
    return this.inner.fatalError;
  }
  onFatal(listener: (e: TokenmillError) => void): void {
    this.inner.onFatal(listener);
  }
  validate(req: EngineRequest): void {
    this.inner.validate(req);
  }
  generate(req: EngineRequest, signal?: AbortSignal): AsyncIterable<EngineOutput> {
    if (this.script !== undefined) {
      const constraint = { type: 'structural_tag' as const, format: { type: 'const_string' as const, value: this.script } };
      req = { ...req, params: { ...req.params, constraint, ignoreEos: false } };
    }
    const stream = this.inner.generate(req, signal);
    this.requests.push(req);
    for (const w of this.requestWaiters.splice(0)) w();
    let finished = false;
    // Aborted: the engine ended it with 'abort', or the caller's signal fired before it finished.
    signal?.addEventListener(
      'abort',
      () => {
        if (!finished) this.recordAbort(req.requestId);
      },
      { once: true },
    );
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        for await (const o of stream) {
          if (o.finished) {
            if (o.finishReason === 'abort') self.recordAbort(req.requestId);
            finished = true;
          }
          yield o;
        }
      },
    };
  }
  abort(requestId: string): void {
    this.inner.abort(requestId);
  }
  admit(): AdmissionTicket {
    return this.inner.admit();
  }
  stats(): EngineStats {
    return this.inner.stats();
  }
  drain(timeoutMs: number): Promise<void> {
    return this.inner.drain(timeoutMs);
  }
  async shutdown(): Promise<void> {
    await this.inner.shutdown();
    this.onShutdown();
  }
  /** Resolves once the engine has admitted `n` requests. */
  async admittedCount(n: number): Promise<void> {
    while (this.requests.length < n) await new Promise<void>((r) => this.requestWaiters.push(r));
  }
  /** Resolves once `n` requests have ended aborted. */
  async abortedCount(n: number): Promise<void> {
    while (this.aborted.length < n) await new Promise<void>((r) => this.abortWaiters.push(r));
  }
  private recordAbort(id: string): void {
    if (this.aborted.includes(id)) return;
    this.aborted.push(id);
    for (const w of this.abortWaiters.splice(0)) w();
  }
}
