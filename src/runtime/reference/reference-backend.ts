// Reference backend: plain-TS loops for every op, f64 accumulation. The executable spec.
// (Stub: replaced by the reference backend work.)
import type { Backend } from '../backend.js';

export function createReferenceBackend(): Backend {
  throw new Error('reference backend not written yet');
}
