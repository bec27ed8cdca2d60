// Process lifecycle for a running server: SIGTERM/SIGINT drain (stop accepting, finish in-flight
// up to drainTimeoutMs, exit 0), a second signal exits at once, and an engine fault exits non-zero
// after in-flight requests got their error. The exit function is injectable for tests.

import { log } from '../util/logger.js';
import type { TokenmillServer } from './app.js';

export interface LifecycleOptions {
  readonly drainTimeoutMs: number;
  /** Time in-flight requests get to receive their error after an engine fault (default 1000). */
  readonly fatalGraceMs?: number;
  readonly exit?: (code: number) => void;
  readonly signals?: readonly NodeJS.Signals[];
}

/** Install the handlers; returns a function that removes them. */
export function installLifecycle(server: TokenmillServer, opts: LifecycleOptions): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;

  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) {
      log.warn(`${sig} again: exiting now`);
      exit(sig === 'SIGINT' ? 130 : 143);
      return;
    }
    stopping = true;
    log.info(`${sig}: draining (${server.inFlight} in flight, up to ${opts.drainTimeoutMs} ms)`);
    void (async () => {
      try {
        await server.drain(opts.drainTimeoutMs);
        await withTimeout(server.close(), 5000);
        log.info('drained; bye');
        exit(server.state === 'dead' ? 1 : 0);
      } catch (e) {
        log.error(`shutdown failed: ${(e as Error).message}`);
        exit(1);
      }
    })();
  };

  for (const s of signals) process.on(s, onSignal);
  server.onFatal(() => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      await withTimeout(server.whenIdle(), opts.fatalGraceMs ?? 1000);
      await withTimeout(server.close(), 2000).catch(() => undefined);
      log.error('exiting after engine fault');
      exit(1);
    })();
  });
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
