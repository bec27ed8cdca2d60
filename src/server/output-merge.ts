// Several engine requests (a completions request with a list of prompts) read as one stream of
// outputs tagged with the sub-request they belong to, in arrival order. Starting them is
// synchronous, so a refusal (overloaded, context too long) surfaces before anything is sent.

import type { EngineClient, EngineOutput, EngineRequest } from '../engine/engine-api.js';

export interface TaggedOutput {
  /** Which of the requests (0-based) this output belongs to. */
  readonly sub: number;
  readonly out: EngineOutput;
}

/**
 * Start every request (throws if the engine refuses one; the caller then aborts `signal` so the
 * ones already started stop) and return one iterator over all their outputs.
 */
export function startOutputs(engine: EngineClient, requests: readonly EngineRequest[], signal: AbortSignal): AsyncIterator<TaggedOutput> {
  const iterables = requests.map((r) => engine.generate(r, signal));
  if (iterables.length === 1) {
    const it = iterables[0]![Symbol.asyncIterator]();
    return {
      next: async () => {
        const r = await it.next();
        return r.done ? { done: true, value: undefined } : { done: false, value: { sub: 0, out: r.value } };
      },
      return: async () => {
        await it.return?.(undefined);
        return { done: true, value: undefined };
      },
    };
  }
  return new MergedOutputs(iterables);
}

class MergedOutputs implements AsyncIterator<TaggedOutput> {
  private readonly queue: TaggedOutput[] = [];
  private waiter: { resolve: (r: IteratorResult<TaggedOutput>) => void; reject: (e: unknown) => void } | null = null;
  private error: { e: unknown } | null = null;
  private numLive: number;
  private stopped = false;

  constructor(iterables: readonly AsyncIterable<EngineOutput>[]) {
    this.numLive = iterables.length;
    iterables.forEach((it, sub) => void this.pump(sub, it));
  }

  private async pump(sub: number, iterable: AsyncIterable<EngineOutput>): Promise<void> {
    try {
      for await (const out of iterable) {
        if (this.stopped) return;
        this.queue.push({ sub, out });
        this.wake();
      }
    } catch (e) {
      this.error ??= { e };
    } finally {
      this.numLive--;
      this.wake();
    }
  }

  private wake(): void {
    const w = this.waiter;
    if (w === null) return;
    this.waiter = null;
    void this.next().then(w.resolve, w.reject);
  }

  next(): Promise<IteratorResult<TaggedOutput>> {
    const item = this.queue.shift();
    if (item !== undefined) return Promise.resolve({ done: false, value: item });
    if (this.error !== null) return Promise.reject(this.error.e);
    if (this.numLive === 0 || this.stopped) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  async return(): Promise<IteratorResult<TaggedOutput>> {
    this.stopped = true;
    this.queue.length = 0;
    return { done: true, value: undefined };
  }
}
