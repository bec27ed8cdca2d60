// The real serving stack for server tests: a seeded tiny Llama (2 layers, vocab 258 = bytes + BOS +
// EOS, default init: logits flat enough that seeded sampling varies) under the real AsyncEngine, behind the
// byte-level FakeFrontend (tokenizer and chat template only). `RecordingEngine` is a spy over the
// real engine (it records what the server submitted and aborted; it decides nothing). `greedyText`
// computes the expected greedy output with generate() on a second copy of the same weights.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncEngine, type AsyncEngineOptions } from '../../src/engine/async-engine.js';
import type { AdmissionTicket, EngineClient, EngineOutput, EngineRequest, EngineStats } from '../../src/engine/engine-api.js';
import { generate } from '../../src/engine/generate.js';
import { detokenizerFor } from '../../src/engine/output-processor.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import type { CausalLM } from '../../src/model/types.js';
import type { Backend } from '../../src/runtime/backend.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { BOS, EOS } from './fakes.js';

export const TINY_MODEL_ID = 'tiny-model';
export const TINY_MAX_MODEL_LEN = 256;

/** The byte vocabulary the FakeFrontend encodes to: ids 0..255 are bytes, BOS and EOS are special. */
export const BYTE_TOKENS = {
  tokenBytes: (id: number): Uint8Array => (id < 256 ? Uint8Array.of(id) : new Uint8Array(0)),
  isSpecial: (id: number): boolean => id >= 256,
  stripsLeadingSpace: false,
};

let shared: { dir: string; backend: Backend; reference: CausalLM } | null = null;

function tinyModelDir(): { dir: string; backend: Backend; reference: CausalLM } | Promise<{ dir: string; backend: Backend; reference: CausalLM }> {
  if (shared !== null) return shared;
  return (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-server-tiny-'));
    const config = { ...MODEL_PRESETS['tiny-llama']!.config, vocab_size: 258, bos_token_id: BOS, eos_token_id: EOS, max_position_embeddings: TINY_MAX_MODEL_LEN };
    writeRandomModel(dir, config, { seed: 8, tokenizer: false });
    const backend = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 1 }) : createReferenceBackend();
    const reference = (await loadModel(dir, backend)).model;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    shared = { dir, backend, reference };
    return shared;
  })();
}

/** The real AsyncEngine on the tiny byte model (a fresh engine and model copy per call). */
export async function tinyRealEngine(o: Partial<AsyncEngineOptions> = {}): Promise<RecordingEngine> {
  const { dir, backend } = await tinyModelDir();
  const { model } = await loadModel(dir, backend);
  const engine = new AsyncEngine({ modelId: TINY_MODEL_ID, model, numBlocks: 256, detokenizer: detokenizerFor(BYTE_TOKENS), usdPerHour: 1, ...o });
  return new RecordingEngine(engine, () => model.dispose());
}

/** Greedy output for prompt ids, computed outside the server: generate() over the same weights. */
export async function greedy(promptTokenIds: readonly number[], maxTokens: number): Promise<{ text: string; ids: number[] }> {
  const { reference } = await tinyModelDir();
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

/** A spy over the real engine: what the server submitted and which requests ended aborted. */
export class RecordingEngine implements EngineClient {
  readonly requests: EngineRequest[] = [];
  readonly aborted: string[] = [];
  private readonly abortWaiters: (() => void)[] = [];
  private readonly requestWaiters: (() => void)[] = [];

  constructor(readonly inner: AsyncEngine, private readonly onShutdown: () => void) {}

  get modelId(): string {
    return this.inner.modelId;
  }
  get maxModelLen(): number {
    return this.inner.maxModelLen;
  }
  get fatalError(): Error | null {
    return this.inner.fatalError;
  }
  generate(req: EngineRequest, signal?: AbortSignal): AsyncIterable<EngineOutput> {
    const stream = this.inner.generate(req, signal);
    this.requests.push(req);
    for (const w of this.requestWaiters.splice(0)) w();
    let finished = false;
    // Aborted: the engine ended it with 'abort', or the caller's signal fired before it finished.
    signal?.addEventListener('abort', () => {
      if (!finished) this.recordAbort(req.requestId);
    }, { once: true });
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
