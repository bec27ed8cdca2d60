// BackendGraphs for the CPU backend: a capture records the ops' commands (buffer ids, offsets,
// shapes and scalars frozen, tensor contents read at replay) into a separate CommandRecorder; a
// replay appends them to the op queue. No JS validation runs at replay, so a decode step costs one
// append plus the native flush. Memory ops and reads inside a capture are errors.
import type { BackendGraphs } from '../backend.js';
import { TokenmillError } from '../../util/errors.js';
import { CommandRecorder } from './cpu-tensor.js';

/** What CpuGraphs needs from the backend (kept narrow to avoid an import cycle). */
export interface GraphHost {
  /** Routes op recording into rec (or back to the queue with null). */
  setCaptureRecorder(rec: CommandRecorder | null): void;
  appendCommands(commands: Int32Array, work: number): void;
}

export class CpuGraphs implements BackendGraphs {
  // Replay equals eager execution bit for bit (test/engine/graph-cache.test.ts: float, Q8_0 and Q4_K_M models), and it takes
  // the JS op recording (~1 ms per stories110M step) off every decode step: on by default.
  readonly decodeByDefault = true;
  readonly warmupBeforeCapture = false;
  private readonly recordings = new Map<string, { readonly commands: Int32Array; readonly work: number }>();

  constructor(private readonly host: GraphHost) {}

  get size(): number {
    return this.recordings.size;
  }

  capture(key: string, fn: () => void): void {
    const rec = new CommandRecorder();
    this.recordings.delete(key);
    this.host.setCaptureRecorder(rec);
    try {
      fn();
    } finally {
      this.host.setCaptureRecorder(null);
    }
    this.recordings.set(key, rec.snapshot());
  }

  replay(key: string): void {
    const g = this.recordings.get(key);
    if (g === undefined) throw new TokenmillError('invalid_argument', `cpu graphs: no recording '${key}'`);
    this.host.appendCommands(g.commands, g.work);
  }

  has(key: string): boolean {
    return this.recordings.has(key);
  }

  delete(key: string): void {
    this.recordings.delete(key);
  }

  clear(): void {
    this.recordings.clear();
  }
}
