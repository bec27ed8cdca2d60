// CUDA graphs for the CUDA backend (the optional Backend.graphs capability): capture() records the
// launches made inside fn through stream capture and instantiates them; replay() launches the graph
// on the backend's stream. Memory calls inside a capture are refused by the addon. Failures are
// TokenmillError('cuda_error') with details.op 'graph_capture' | 'graph_launch'.
import type { BackendGraphs } from '../backend.js';
import { TokenmillError } from '../../util/errors.js';
import type { CudaGraphNative } from '../native.js';
import { toCudaError } from './cuda-tensor.js';

export function hasGraphNative(ctx: object): ctx is CudaGraphNative {
  const c = ctx as Partial<CudaGraphNative>;
  return typeof c.graphBegin === 'function' && typeof c.graphEnd === 'function' && typeof c.graphLaunch === 'function';
}

function graphError(op: 'graph_capture' | 'graph_launch', key: string, e: unknown): TokenmillError {
  const base = toCudaError(e);
  return new TokenmillError(base.code, `${op} '${key}': ${base.message}`, { cause: e, details: { op, key } });
}

export class CudaGraphs implements BackendGraphs {
  readonly decodeByDefault = false; // opt-in until the decode replay has passed on a device
  readonly warmupBeforeCapture = true;
  private readonly ids = new Map<string, number>();
  private capturingKey: string | null = null;

  constructor(
    private readonly ctx: CudaGraphNative,
    private readonly alive: () => boolean,
  ) {}

  get capturing(): boolean {
    return this.capturingKey !== null;
  }

  get size(): number {
    return this.ids.size;
  }

  capture(key: string, fn: () => void): void {
    this.live();
    if (this.capturingKey !== null)
      throw new TokenmillError('cuda_error', `graph_capture '${key}': already capturing '${this.capturingKey}'`, {
        details: { op: 'graph_capture', key },
      });
    try {
      this.ctx.graphBegin();
    } catch (e) {
      throw graphError('graph_capture', key, e);
    }
    this.capturingKey = key;
    let id: number;
    try {
      fn();
      this.capturingKey = null;
      id = this.ctx.graphEnd();
    } catch (e) {
      this.capturingKey = null;
      try {
        this.ctx.graphAbort();
      } catch {
        // the original error says more
      }
      throw graphError('graph_capture', key, e);
    }
    const old = this.ids.get(key);
    if (old !== undefined) this.ctx.graphDestroy(old);
    this.ids.set(key, id);
  }

  replay(key: string): void {
    this.live();
    const id = this.ids.get(key);
    if (id === undefined)
      throw new TokenmillError('invalid_argument', `graph_launch: no graph captured under '${key}'`, {
        details: { op: 'graph_launch', key },
      });
    try {
      this.ctx.graphLaunch(id);
    } catch (e) {
      throw graphError('graph_launch', key, e);
    }
  }

  has(key: string): boolean {
    return this.ids.has(key);
  }

  delete(key: string): void {
    const id = this.ids.get(key);
    if (id === undefined) return;
    this.ids.delete(key);
    if (this.alive()) this.ctx.graphDestroy(id);
  }

  clear(): void {
    if (this.ids.size > 0 && this.alive()) this.ctx.graphDestroy(0);
    this.ids.clear();
  }

  private live(): void {
    if (!this.alive()) throw new TokenmillError('cuda_error', 'the CUDA backend was disposed');
  }
}
