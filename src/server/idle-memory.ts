// Gives memory back once a burst of load is over. V8 sizes its heap for the allocation rate it last
// saw and only shrinks it on a later major GC, which a quiet server never triggers: after a flood of
// requests the heap stays at its peak size for as long as the server idles (measured on the memory
// fuzz: heap total 56 -> 88 MB, still there 30 s later). One full GC after the engine and the HTTP
// side have been idle for `idleMs` returns it; glibc's malloc_trim (through the CPU addon, where
// present) hands back the native arenas the parsers and sockets grew. A busy server never pays the
// pause, and an idle one pays it once per burst, not on a timer.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Counter, type Registry } from 'prom-client';
import { log } from '../util/logger.js';

export interface IdleMemoryOptions {
  /** Quiet time before the release (ms). */
  readonly idleMs: number;
  /** True while the engine holds work (running or waiting sequences). */
  readonly busy: () => boolean;
  /** Returns native allocator memory to the OS (CPU addon's trimMemory); absent: none. */
  readonly trimNative?: () => void;
  readonly registry?: Registry;
  /** Test seam: the release itself (default: full GC, then trimNative). */
  readonly release?: () => void;
}

let gcFn: (() => void) | null | undefined;

/**
 * A full, synchronous V8 GC; false where it cannot be had (the flag refused). compact: evacuate
 * every fragmented old-space page too (V8 otherwise moves only the emptiest few, and the heap keeps
 * the pages half-empty objects pin: after one fuzz, 30 MB live in 101 MB of heap).
 */
export function fullGc(compact = false): boolean {
  if (gcFn === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (typeof exposed === 'function') gcFn = exposed;
    else {
      try {
        // Exposing gc this late is safe: it only adds the function to contexts created afterwards.
        setFlagsFromString('--expose-gc');
        gcFn = runInNewContext('gc') as () => void;
      } catch {
        gcFn = null;
      }
    }
  }
  if (gcFn === null) return false;
  if (compact) setFlagsFromString('--compact-on-every-full-gc');
  try {
    gcFn();
  } finally {
    if (compact) setFlagsFromString('--no-compact-on-every-full-gc');
  }
  return true;
}

export class IdleMemoryRelease {
  private lastActivityMs = Date.now();
  private pending = false;
  private readonly timer: NodeJS.Timeout;
  private readonly releases: Counter | null;
  private numReleases = 0;

  constructor(private readonly opts: IdleMemoryOptions) {
    this.releases = opts.registry
      ? new Counter({
          name: 'tokenmill_idle_memory_releases_total',
          help: 'Full GCs (and native trims) run after load stopped, to give the heap grown under it back.',
          registers: [opts.registry],
        })
      : null;
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(1000, opts.idleMs / 4)));
    this.timer.unref();
  }

  /** Any request arriving: the next quiet period ends in a release. */
  touch(): void {
    this.lastActivityMs = Date.now();
    this.pending = true;
  }

  get count(): number {
    return this.numReleases;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    if (!this.pending) return;
    const now = Date.now();
    if (this.opts.busy()) {
      this.lastActivityMs = now;
      return;
    }
    if (now - this.lastActivityMs < this.opts.idleMs) return;
    this.pending = false;
    const t0 = performance.now();
    try {
      if (this.opts.release) this.opts.release();
      else {
        fullGc(true);
        this.opts.trimNative?.();
      }
    } catch (e) {
      log.warn(`idle memory release failed: ${(e as Error).message}`);
      return;
    }
    this.numReleases++;
    this.releases?.inc();
    log.debug(`idle memory release: ${(performance.now() - t0).toFixed(0)} ms`);
  }
}
