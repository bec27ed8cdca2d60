// The CPU backend's op queue: the native engine handle, the CommandRecorder that ops are recorded
// into (or the graph capture's recorder), the argument checks every op runs first, and the two ways
// the queue is executed: flush() on this thread, drain() on a worker thread for large queues (>=
// asyncMinWork multiply-adds, e.g. a prefill) so the event loop stays free. Memory and the ops
// themselves are in cpu-backend.ts.
import type { BackendGraphs, Tensor } from '../backend.js';
import { checkArgLayout } from '../backend.js';
import type { DType } from '../dtype.js';
import type { CpuAddon, CpuEngineHandle, CpuEngineInfo, CpuEngineSwitches, CpuPoolOptions } from '../native.js';
import { TokenmillError } from '../../util/errors.js';
import { invariant } from '../../util/invariant.js';
import { CommandRecorder, CpuTensor, overlaps, sameRange } from './cpu-tensor.js';
import { CpuGraphs } from './cpu-graphs.js';
import { nativeError, physicalCoreCount, type CpuIsa } from './cpu-addon.js';

/** Multiply-adds from which a queue runs off the JS thread: below it, the worker hand-off costs more than it frees. */
export const ASYNC_MIN_WORK_DEFAULT = 2e7;

export interface CpuBackendOptions {
  /** Worker threads for kernels (the caller counts as one); default: the number of physical cores (CLI: TOKENMILL_NUM_THREADS). */
  readonly numThreads?: number;
  /**
   * Force a kernel ISA when the CPU supports it; default: best (CLI: TOKENMILL_CPU_ISA). The *vnni tables
   * differ from their base only in matmulGgml (VNNI dot products: AVX512-VNNI on avx512, AVX-VNNI on avx2).
   */
  readonly cpuIsa?: CpuIsa;
  /**
   * Queues of at least this many multiply-adds run off the JS thread at read()/synchronize()
   * (default ASYNC_MIN_WORK_DEFAULT; CLI: TOKENMILL_ASYNC_MIN_WORK; 0 = always, Infinity = never).
   */
  readonly asyncMinWork?: number;
  /** Expose `graphs` (record/replay of op sequences, used for decode steps); default true. */
  readonly graphs?: boolean;
  /** Worker pool tuning (spin time before sleeping, stall fallback); default: the native defaults. */
  readonly cpuPool?: CpuPoolOptions;
  /** Native engine switches (per-op profiling, huge pages); default: the native defaults. */
  readonly cpuEngine?: CpuEngineSwitches;
  /**
   * GGUF weights used as stored live in a read-only mapping of the file (Backend.mapWeightFile), not in
   * heap copies; default true (CLI: TOKENMILL_GGUF_MMAP=0 turns it off: the file is read and copied instead).
   */
  readonly mmap?: boolean;
}

export abstract class CpuOpQueue {
  readonly isa: string;
  readonly numThreads: number;
  protected engine: CpuEngineHandle | null;
  protected readonly rec = new CommandRecorder();
  protected inflight: Promise<void> | null = null;
  private readonly asyncMinWork: number;
  /** CpuBackendOptions.mmap. */
  protected readonly mmap: boolean;
  /** Recorder of an ongoing graph capture (ops go there instead of the queue). */
  private capturing: CommandRecorder | null = null;
  /**
   * Record once, replay many (BackendGraphs; replays skip all JS-side validation). Present unless
   * CpuBackendOptions.graphs is false.
   */
  readonly graphs?: BackendGraphs;

  constructor(
    protected readonly addon: CpuAddon,
    opts: CpuBackendOptions,
  ) {
    const threads = opts.numThreads ?? physicalCoreCount();
    invariant(Number.isInteger(threads) && threads >= 1 && threads <= 1024, `cpu backend: bad numThreads ${threads}`);
    if (opts.graphs !== false) {
      this.graphs = new CpuGraphs({
        setCaptureRecorder: (rec) => {
          invariant(rec === null || this.capturing === null, 'cpu graphs: nested capture');
          this.capturing = rec;
        },
        appendCommands: (commands, work) => {
          this.notCapturing('replay');
          this.live();
          this.rec.append(commands, work);
        },
      });
    }
    const isa = opts.cpuIsa ?? '';
    this.asyncMinWork = opts.asyncMinWork ?? ASYNC_MIN_WORK_DEFAULT;
    this.mmap = opts.mmap ?? true;
    try {
      this.engine = addon.createEngine(threads, isa, { ...opts.cpuPool, ...opts.cpuEngine });
      const info = addon.engineInfo(this.engine);
      this.isa = info.isa;
      this.numThreads = info.numThreads;
    } catch (e) {
      throw nativeError(e);
    }
  }

  /** Native engine info (ISA, threads, and per-op times with the cpuEngine `profile` switch). */
  info(): CpuEngineInfo {
    return this.addon.engineInfo(this.live());
  }

  protected live(): CpuEngineHandle {
    invariant(this.engine !== null, 'cpu backend used after dispose()');
    return this.engine;
  }

  /** Validates an op argument: ours, alive, one of dtypes, and (when given) of shape (-1 = any). */
  arg(t: Tensor, name: string, dtypes: readonly DType[], shape?: readonly number[]): CpuTensor {
    invariant(t instanceof CpuTensor && t.owner === this, () => `${name}: foreign tensor (backend '${(t as Tensor | null)?.backend}')`);
    invariant(t.storage.live, () => `${name}: tensor used after free()`);
    checkArgLayout(t, name, dtypes, shape);
    return t;
  }
  noAlias(outName: string, out: CpuTensor, inputs: Record<string, CpuTensor>): void {
    invariant(out.storage.mapped !== true, () => `${outName} is a read-only mapped weight`);
    for (const [n, t] of Object.entries(inputs)) invariant(!overlaps(out, t), () => `${outName} overlaps ${n}`);
  }
  aliasExactOrNone(outName: string, out: CpuTensor, name: string, other: CpuTensor): void {
    invariant(out.storage.mapped !== true, () => `${outName} is a read-only mapped weight`);
    invariant(sameRange(out, other) || !overlaps(out, other), () => `${outName} partially overlaps ${name}`);
  }
  get recorder(): CommandRecorder {
    this.live();
    return this.capturing ?? this.rec;
  }
  protected notCapturing(what: string): void {
    if (this.capturing !== null) throw new TokenmillError('invalid_argument', `cpu graphs: ${what} inside a graph capture`);
  }

  /** Runs every recorded op now, on this thread (after any worker-thread flush finishes). */
  flush(): void {
    this.notCapturing('synchronization');
    const engine = this.live();
    try {
      if (this.inflight !== null) {
        this.inflight = null; // its Promise still resolves later, harmlessly
        this.addon.waitIdle(engine);
      }
      if (this.rec.length === 0) return;
      const n = this.rec.length;
      this.rec.reset();
      this.addon.flush(engine, this.rec.commands, n);
    } catch (e) {
      throw nativeError(e);
    }
  }

  /** Runs every recorded op; large queues on a worker thread while the event loop stays free. */
  protected async drain(offThread = false): Promise<void> {
    this.notCapturing('read/synchronize');
    for (;;) {
      const engine = this.live();
      const p = this.inflight;
      if (p !== null) {
        await p;
        if (this.inflight === p) this.inflight = null;
        try {
          this.addon.waitIdle(engine); // reports the finished flush's failure, if any
        } catch (e) {
          throw nativeError(e);
        }
        continue;
      }
      if (this.rec.length === 0) return;
      if (this.rec.work < this.asyncMinWork && !offThread) {
        this.flush();
        return;
      }
      const n = this.rec.length;
      this.rec.reset();
      try {
        this.inflight = this.addon.flushAsync(engine, this.rec.commands, n); // copies the commands
      } catch (e) {
        throw nativeError(e);
      }
    }
  }
}
