// Test helper: wraps any Backend with a fake `graphs` capability that keeps the CUDA semantics the
// engine relies on: during capture ops are RECORDED (not run) with their host arguments frozen,
// replay re-runs them reading the tensors' current contents, and memory traffic (alloc, free,
// upload, read, synchronize) inside a capture throws. Logs events so tests can check the order.
import type { Backend, BackendGraphs } from '../../src/runtime/backend.js';

const FORBIDDEN_IN_CAPTURE = new Set(['alloc', 'free', 'upload', 'read', 'readInt32', 'synchronize', 'dispose']);
const PASS_THROUGH = new Set(['view', 'memoryStats']);

export interface RecordingBackend extends Backend {
  readonly graphs: BackendGraphs & { readonly numCaptures: number };
  /** 'upload' | 'replay:<key>' | 'capture:<key>' | op name (eager) | 'rec:<op>' (recorded). */
  readonly events: string[];
}

export function withRecordingGraphs(inner: Backend): RecordingBackend {
  const recordings = new Map<string, (() => void)[]>();
  const events: string[] = [];
  let capturing: (() => void)[] | null = null;
  let numCaptures = 0;
  const graphs: BackendGraphs & { numCaptures: number } = {
    capture(key, fn) {
      if (capturing !== null) throw new Error('nested capture');
      const rec: (() => void)[] = [];
      capturing = rec;
      try {
        fn();
      } finally {
        capturing = null;
      }
      recordings.set(key, rec);
      numCaptures++;
      events.push(`capture:${key}`);
    },
    replay(key) {
      const rec = recordings.get(key);
      if (rec === undefined) throw new Error(`no recording ${key}`);
      events.push(`replay:${key}`);
      for (const op of rec) op();
    },
    decodeByDefault: false,
    warmupBeforeCapture: true,
    has: (key) => recordings.has(key),
    delete: (key) => void recordings.delete(key),
    clear: () => recordings.clear(),
    get size() {
      return recordings.size;
    },
    get numCaptures() {
      return numCaptures;
    },
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'graphs') return graphs;
      if (prop === 'events') return events;
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      const fn = v as (...a: unknown[]) => unknown;
      return (...args: unknown[]): unknown => {
        if (capturing !== null) {
          if (FORBIDDEN_IN_CAPTURE.has(prop)) throw new Error(`${prop} inside a graph capture`);
          if (PASS_THROUGH.has(prop)) return fn.apply(target, args);
          const frozen = [...args];
          capturing.push(() => void fn.apply(target, frozen));
          events.push(`rec:${prop}`);
          return undefined;
        }
        if (prop === 'upload') events.push('upload');
        else if (!PASS_THROUGH.has(prop) && !FORBIDDEN_IN_CAPTURE.has(prop)) events.push(prop);
        return fn.apply(target, args);
      };
    },
  }) as RecordingBackend;
}
