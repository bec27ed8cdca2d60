// Test helpers: seeded tiny models in temp dirs, logits comparison with atol + rtol, and the
// "skip with a reason, but fail in CI" rule for optional backends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel, type RandomModelOptions } from '../../src/model/random-model.js';
import type { ModelConfig } from '../../src/model/types.js';

export interface TinyModelDir {
  readonly dir: string;
  readonly config: ModelConfig;
  cleanup(): void;
}

export function makeTinyModel(preset: string, opts: RandomModelOptions & { patch?: Record<string, unknown> } = {}): TinyModelDir {
  const p = MODEL_PRESETS[preset];
  if (p === undefined) throw new Error(`unknown preset ${preset}`);
  const dir = mkdtempSync(join(tmpdir(), `tm-${preset}-`));
  const config = writeRandomModel(dir, { ...p.config, ...opts.patch }, { tokenizer: false, seed: 7, ...opts });
  return { dir, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Comparison {
  /** Largest |got - want| / (atol + rtol * |want|): <= 1 passes. */
  readonly worstRatio: number;
  readonly worstIndex: number;
  readonly maxAbsErr: number;
}

export function compareLogits(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): Comparison {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let worstRatio = 0;
  let worstIndex = -1;
  let maxAbsErr = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    const ratio = Number.isFinite(err) ? err / (atol + rtol * Math.abs(want[i]!)) : Infinity;
    maxAbsErr = Math.max(maxAbsErr, err);
    if (ratio > worstRatio || Number.isNaN(ratio)) {
      worstRatio = Number.isNaN(ratio) ? Infinity : ratio;
      worstIndex = i;
    }
  }
  return { worstRatio, worstIndex, maxAbsErr };
}

export function describe(c: Comparison): string {
  return (
    `worst error ${(c.worstRatio * 100).toFixed(1)}% of tolerance at index ${c.worstIndex} (max abs err ` +
    `${c.maxAbsErr.toExponential(2)})`
  );
}

/** For an unavailable optional backend: a skip reason locally, a hard failure in CI. */
export function skipOrFailInCi(available: boolean, reason: string): string | false {
  if (available) return false;
  if (process.env.CI === 'true') throw new Error(`required in CI but unavailable: ${reason}`);
  return reason;
}

/** Deterministic pseudo-random token ids in [0, vocab). */
export function tokenSeq(n: number, vocab: number, seed = 1): number[] {
  let x = seed >>> 0;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % vocab;
  });
}
