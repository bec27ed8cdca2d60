// AsyncEngine: the EngineClient the server and CLI use. Owns the step loop (yielding to the event
// loop between steps), per-request output streams, aborts (applied between steps, so a request's
// blocks are freed within one step), admission (admission.ts: the one place that bounds waiting
// work, fed with each step's time and finishes), drain and shutdown, and the dead state: a
// step that throws fails every in-flight request with the fatal error and refuses new ones.
// A constrained request whose grammar is not compiled yet waits outside the engine until it is
// (engine.prepare()); a compile failure fails its stream with the typed 400 before any output.
import { TokenmillError, toTokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';
import type { AdmissionTicket, EngineClient, EngineOutput, EngineRequest, EngineStats } from './engine-api.js';
import { AdmissionControl } from './admission.js';
import type { EngineOptions } from './engine-config.js';
import { Engine } from './engine.js';

export interface AsyncEngineOptions extends EngineOptions {
  /** Model id reported to clients (/v1/models). */
  readonly modelId: string;
  /** Most requests admitted but not yet scheduled; beyond it generate() throws server_overloaded (admission.ts default). */
  readonly maxWaitingRequests?: number;
  /** Most seconds a new request is expected to wait before its first step (admission.ts; 0 = none). */
  readonly maxQueueWaitSeconds?: number;
}

class RequestStream implements AsyncIterator<EngineOutput> {
  private readonly queue: EngineOutput[] = [];
  private waiter: ((r: IteratorResult<EngineOutput>) => void) | null = null;
  private failer: ((e: Error) => void) | null = null;
  private error: Error | null = null;
  private numFinished = 0;
  /** Called once when the stream ends for any reason (drops an AbortSignal listener). */
  onEnd: (() => void) | null = null;
  ended = false;

  constructor(
    readonly requestId: string,
    private readonly numChoices: number,
    private readonly onCancel: () => void,
  ) {}

  get complete(): boolean {
    return this.numFinished >= this.numChoices;
  }

  push(o: EngineOutput): void {
    if (o.finished) this.numFinished++;
    if (this.complete) {
      const f = this.onEnd;
      this.onEnd = null;
      f?.();
    }
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = this.failer = null;
      w({ value: o, done: false });
    } else this.queue.push(o);
  }

  fail(e: Error): void {
    this.error = e;
    if (this.failer !== null) {
      const f = this.failer;
      this.waiter = this.failer = null;
      this.finalize();
      f(e);
    }
  }

  next(): Promise<IteratorResult<EngineOutput>> {
    const o = this.queue.shift();
    if (o !== undefined) return Promise.resolve({ value: o, done: false });
    if (this.complete) return this.end();
    if (this.error !== null) {
      this.finalize();
      return Promise.reject(this.error);
    }
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failer = reject;
    });
  }

  /** The consumer stopped early (break / return): abort the request. */
  return(): Promise<IteratorResult<EngineOutput>> {
    if (!this.complete && this.error === null) this.onCancel();
    this.queue.length = 0;
    return this.end();
  }

  private end(): Promise<IteratorResult<EngineOutput>> {
    this.finalize();
    return Promise.resolve({ value: undefined, done: true });
  }

  private finalize(): void {
    this.ended = true;
    const f = this.onEnd;
    this.onEnd = null;
    f?.();
  }
}

export class AsyncEngine implements EngineClient {
  readonly modelId: string;
  readonly engine: Engine;
  readonly admission: AdmissionControl;
  private readonly streams = new Map<string, RequestStream>();
  private readonly pendingAborts = new Set<string>();
  /** Requests waiting for their grammar to compile (not in the engine yet); true once aborted. */
  private readonly preparing = new Map<string, boolean>();
  private loopRunning = false;
  private loopDone: Promise<void> = Promise.resolve();
  private draining = false;
  private closed = false;
  private dead: TokenmillError | null = null;
  private idleWaiters: (() => void)[] = [];
  private fatalListeners: ((e: TokenmillError) => void)[] = [];
  /** Places reserved by admit() and not yet taken by generate() or released. */
  private numReserved = 0;
  private readonly tickets = new WeakSet<AdmissionTicket>();

  constructor(opts: AsyncEngineOptions) {
    this.modelId = opts.modelId;
    this.engine = new Engine(opts);
    this.admission = new AdmissionControl({
      maxNumSeqs: this.engine.config.maxNumSeqs,
      ...(opts.maxWaitingRequests !== undefined ? { maxWaitingRequests: opts.maxWaitingRequests } : {}),
      ...(opts.maxQueueWaitSeconds !== undefined ? { maxQueueWaitSeconds: opts.maxQueueWaitSeconds } : {}),
    });
  }

  get maxModelLen(): number {
    return this.engine.maxModelLen;
  }

  get embeddingSize(): number | undefined {
    return this.engine.runner.model.hiddenOutput !== undefined ? this.engine.runner.model.config.hiddenSize : undefined;
  }

  get fatalError(): Error | null {
    return this.dead;
  }

  /** Reserve a waiting place (EngineClient.admit): the server asks before the template and the tokenizer run. */
  admit(): AdmissionTicket {
    this.checkAdmission();
    this.numReserved++;
    let held = true;
    const ticket: AdmissionTicket = {
      release: () => {
        if (!held) return;
        held = false;
        this.numReserved--;
      },
    };
    this.tickets.add(ticket);
    return ticket;
  }

  private checkAdmission(): void {
    this.checkAccepting();
    // Requests whose grammar compiles and places reserved by admit() are waiting too, outside the engine.
    this.admission.check(this.engine.numQueuedRequests + this.preparing.size + this.numReserved, this.engine.stats().numRunning);
  }

  private checkAccepting(): void {
    if (this.dead !== null) throw new TokenmillError('engine_dead', `the engine is dead: ${this.dead.message}`, { cause: this.dead });
    if (this.draining || this.closed) throw new TokenmillError('server_draining', 'the engine is draining and accepts no new requests');
  }

  generate(req: EngineRequest, signal?: AbortSignal): AsyncIterable<EngineOutput> {
    if (req.admitted !== undefined && this.tickets.has(req.admitted)) this.checkAccepting();
    else this.checkAdmission();
    this.validate(req);
    const id = req.requestId;
    const ready = this.engine.isPrepared(req.params);
    if (ready) this.engine.admit(req);
    req.admitted?.release(); // the reserved place is now this request's own (or a part's of the same request)
    const stream = new RequestStream(id, req.params.n, () => this.abort(id));
    this.streams.set(id, stream);
    if (!ready) this.prepareThenAdd(req, stream);
    if (signal !== undefined) {
      const onAbort = (): void => this.abort(id);
      if (signal.aborted) this.abort(id);
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        stream.onEnd = () => signal.removeEventListener('abort', onAbort);
      }
    }
    this.kick();
    let handedOut = false;
    return {
      [Symbol.asyncIterator]: () => {
        if (handedOut) throw new TokenmillError('internal_error', `the output stream of ${id} can be iterated once`);
        handedOut = true;
        return stream;
      },
    };
  }

  /** The one validation of a request (Engine.validateRequest), before the grammar compiles or anything queues. */
  validate(req: EngineRequest): void {
    if (this.streams.has(req.requestId)) throw new TokenmillError('invalid_argument', `duplicate request id ${req.requestId}`);
    this.engine.validateRequest(req);
  }

  onFatal(listener: (e: TokenmillError) => void): void {
    if (this.dead !== null) listener(this.dead);
    else this.fatalListeners.push(listener);
  }

  abort(requestId: string): void {
    if (this.preparing.has(requestId)) {
      this.preparing.set(requestId, true);
      return;
    }
    if (!this.engine.hasRequest(requestId)) return;
    this.pendingAborts.add(requestId);
    if (!this.loopRunning) this.applyAborts();
  }

  stats(): EngineStats {
    return this.engine.stats();
  }

  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    if (this.engine.numUnfinishedRequests > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.whenIdle().then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), Math.max(0, timeoutMs));
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) for (const id of this.engine.requestIds()) this.abort(id);
    }
    await this.loopDone;
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    await this.drain(0);
    this.closed = true;
    this.engine.dispose();
  }

  /** Compile the request's grammar, then queue it (or fail its stream with the compile error). */
  private prepareThenAdd(req: EngineRequest, stream: RequestStream): void {
    const id = req.requestId;
    this.preparing.set(id, false);
    const fail = (e: unknown): void => {
      this.streams.delete(id);
      stream.fail(toTokenmillError(e));
    };
    this.engine.prepare(req.params).then(
      () => {
        const aborted = this.preparing.get(id) === true;
        this.preparing.delete(id);
        if (this.dead !== null)
          return fail(new TokenmillError('engine_dead', `the engine is dead: ${this.dead.message}`, { cause: this.dead }));
        if (this.closed || this.draining)
          return fail(new TokenmillError('server_draining', 'the engine is draining; this request had not started'));
        this.engine.admit(req); // validated in generate()
        if (aborted) this.abort(id);
        this.kick();
      },
      (e: unknown) => {
        this.preparing.delete(id);
        fail(e);
      },
    );
  }

  private kick(): void {
    if (this.loopRunning || this.dead !== null) return;
    this.loopRunning = true;
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.applyAborts();
        if (!this.engine.hasWork()) break;
        const t0 = performance.now();
        const outs = await this.engine.step();
        const numFinished = this.deliver(outs);
        this.admission.recordStep((performance.now() - t0) / 1000, numFinished);
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (e) {
      this.die(e);
    } finally {
      this.loopRunning = false;
      this.applyAborts();
      if (this.engine.numUnfinishedRequests === 0 || this.dead !== null) this.wakeIdle();
    }
  }

  private applyAborts(): void {
    if (this.pendingAborts.size === 0) return;
    const ids = [...this.pendingAborts];
    this.pendingAborts.clear();
    for (const id of ids) this.deliver(this.engine.abortRequest(id));
  }

  /** Hand outputs to their streams; returns how many requests they finished. */
  private deliver(outs: readonly EngineOutput[]): number {
    let numFinished = 0;
    for (const o of outs) {
      const s = this.streams.get(o.requestId);
      if (s === undefined) continue;
      s.push(o);
      if (s.complete) {
        this.streams.delete(o.requestId);
        numFinished++;
      }
    }
    if (this.engine.numUnfinishedRequests === 0) this.wakeIdle();
    return numFinished;
  }

  private wakeIdle(): void {
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  private die(e: unknown): void {
    const err = toTokenmillError(e);
    this.dead = err.fatal ? err : new TokenmillError('engine_dead', `engine step failed: ${err.message}`, { cause: e });
    log.error(`engine dead: ${this.dead.message}`);
    // Listeners (the server) learn of the death before any in-flight request sees its error.
    for (const l of this.fatalListeners.splice(0)) {
      try {
        l(this.dead);
      } catch (le) {
        log.warn(`a fatal-error listener threw: ${(le as Error).message}`);
      }
    }
    for (const s of this.streams.values()) s.fail(this.dead);
    this.streams.clear();
  }

  private whenIdle(): Promise<void> {
    if (this.engine.numUnfinishedRequests === 0 || this.dead !== null) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
