// Conformance harness: seeded inputs uploaded identically to a backend and to the reference, and
// tolerance checks |got - ref| <= atol + rtol * |ref| with rtol by the backend's computeDType.
// Activations are rounded to the backend's computeDType on the host so both sides see equal values.
import { describe, it, before, after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, Tensor } from '../../src/runtime/backend.js';
import { f32ToHalf, halfToF32, type DType, type FloatDType } from '../../src/runtime/dtype.js';
import { createReferenceBackend } from '../../src/runtime/reference/reference-backend.js';
import type { CpuIsa } from '../../src/runtime/select.js';
import { conformanceTargets, type TargetOptions } from './backends.js';

export const RTOL: Readonly<Record<FloatDType, number>> = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 };
export const WEIGHT_DTYPES: readonly FloatDType[] = ['f32', 'f16', 'bf16'];

/** mulberry32: small, seedable, good enough for test data. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let x = this.s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
  /** Approximately N(0, 1): sum of 4 uniforms, rescaled (bounded tails keep f16 in range). */
  normal(): number {
    return (this.next() + this.next() + this.next() + this.next() - 2) * Math.sqrt(3);
  }
  normals(n: number, scale = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * scale;
    return out;
  }
  /** Uniform with variance scale^2: a quarter of the cost of normals(), for multi-million-element tables. */
  uniforms(n: number, scale = 1): Float32Array {
    const out = new Float32Array(n);
    const a = 2 * Math.sqrt(3) * scale;
    for (let i = 0; i < n; i++) out[i] = (this.next() - 0.5) * a;
    return out;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

let f16Table: Float32Array | null = null;
/** Decode half bits to f32 (f16 through a 64K-entry table: dtype.ts's exact decoder is slow on 9M values). */
function decodeHalf(bits: Uint16Array, dtype: 'f16' | 'bf16'): Float32Array {
  if (dtype === 'bf16') return halfToF32(bits, dtype);
  f16Table ??= halfToF32(
    Uint16Array.from({ length: 65536 }, (_, i) => i),
    'f16',
  );
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16Table[bits[i]!]!;
  return out;
}

export function roundTo(values: Float32Array, dtype: DType): Float32Array {
  if (dtype === 'f16' || dtype === 'bf16') return decodeHalf(f32ToHalf(values, dtype), dtype);
  return values;
}

export function rms(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!;
  return values.length === 0 ? 0 : Math.sqrt(s / values.length);
}

/** The same logical tensor on the backend under test and on the reference. */
export interface Pair {
  readonly be: Tensor;
  readonly ref: Tensor;
  /** The exact values both sides were given (after rounding), when uploaded. */
  readonly values?: Float32Array;
}

export interface Tolerance {
  readonly rtol: number;
  readonly atol: number;
}

export class Harness {
  private readonly owned: { be: Tensor[]; ref: Tensor[] } = { be: [], ref: [] };
  constructor(
    readonly be: Backend,
    readonly ref: Backend,
    readonly rng: Rng,
    readonly t: TestContext,
  ) {}

  get rtol(): number {
    return RTOL[this.be.computeDType as FloatDType];
  }
  /** Tolerance for a result whose typical magnitude is `scale` (atol = rtol * scale). */
  tol(scale: number): Tolerance {
    return { rtol: this.rtol, atol: this.rtol * scale };
  }

  /** For results rounded once into computeDType (copies, adds): atol covers f16 subnormals' coarse steps. */
  roundingTol(): Tolerance {
    return { rtol: this.rtol, atol: this.rtol * 1e-3 };
  }

  alloc(shape: number[], beDType: DType, refDType: DType = beDType): Pair {
    const p = { be: this.be.alloc(shape, beDType), ref: this.ref.alloc(shape, refDType) };
    this.owned.be.push(p.be);
    this.owned.ref.push(p.ref);
    return p;
  }
  private put(p: Pair, values: Float32Array | Int32Array): void {
    this.be.upload(p.be, values);
    this.ref.upload(p.ref, values);
  }
  /** An activation: computeDType on the backend, f32 on the reference, values rounded to computeDType. */
  act(shape: number[], values: Float32Array): Pair {
    const p = this.alloc(shape, this.be.computeDType, 'f32');
    const v = roundTo(values, this.be.computeDType);
    this.put(p, v);
    return { ...p, values: v };
  }
  /** A tensor of an explicit float dtype on both sides (weights, f32 logits, invFreq). */
  typed(shape: number[], dtype: FloatDType, values: Float32Array): Pair {
    const p = this.alloc(shape, dtype);
    if (dtype === 'f32') {
      this.put(p, values);
      return { ...p, values };
    }
    const bits = f32ToHalf(values, dtype); // raw bits: both sides get identical values, converted once
    this.be.upload(p.be, bits);
    this.ref.upload(p.ref, bits);
    return { ...p, values: decodeHalf(bits, dtype) };
  }
  ints(shape: number[], values: ArrayLike<number>): Pair {
    const p = this.alloc(shape, 'i32');
    this.put(p, Int32Array.from(values));
    return p;
  }
  /** An output poisoned first (NaN for floats, -7777 for ints) so unwritten elements are caught. */
  out(shape: number[], beDType: DType = this.be.computeDType, refDType: DType = beDType === 'i32' ? 'i32' : 'f32'): Pair {
    const p = this.alloc(shape, beDType, refDType);
    const n = p.be.numel;
    if (beDType === 'i32') this.put(p, new Int32Array(n).fill(-7777));
    else this.put(p, new Float32Array(n).fill(NaN));
    return p;
  }

  /** Views over the same region of both sides (not owned: freeing the base frees them). */
  view(p: Pair, shape: number[], offset: number): Pair {
    return { be: this.be.view(p.be, shape, offset), ref: this.ref.view(p.ref, shape, offset) };
  }

  /** Read both sides and assert closeness; reports the worst error as a share of the tolerance. */
  async expectClose(label: string, p: Pair, tol: Tolerance): Promise<void> {
    const [got, want] = await Promise.all([this.be.read(p.be), this.ref.read(p.ref)]);
    assert.equal(got.length, want.length, `${label}: length`);
    let worst = 0;
    let worstAt = -1;
    for (let i = 0; i < want.length; i++) {
      const r = want[i]!;
      const g = got[i]!;
      const ratio = g === r || (Number.isNaN(r) && Number.isNaN(g)) ? 0 : Math.abs(g - r) / (tol.atol + tol.rtol * Math.abs(r));
      if (!(ratio <= worst)) {
        worst = Number.isNaN(ratio) ? Infinity : ratio;
        worstAt = i;
      }
    }
    const at = worstAt < 0 ? '' : ` at [${worstAt}]: got ${got[worstAt]}, ref ${want[worstAt]}`;
    this.t.diagnostic(
      `${label}: worst error ${(worst * 100).toFixed(1)}% of tolerance (rtol ${tol.rtol}, atol ${tol.atol.toExponential(2)})${at}`,
    );
    assert.ok(
      worst <= 1,
      `${label}: ${Number.isNaN(got[worstAt]!) ? 'output not written (NaN)' : 'out of tolerance'}${at}, ` +
        `${(worst * 100).toFixed(1)}% of tolerance`,
    );
  }

  async expectEqualInts(label: string, p: Pair): Promise<void> {
    const [got, want] = await Promise.all([this.be.readInt32(p.be), this.ref.readInt32(p.ref)]);
    for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `${label}[${i}]: got ${got[i]}, ref ${want[i]}`);
  }

  freeAll(): void {
    for (const t of this.owned.be.reverse()) this.be.free(t);
    for (const t of this.owned.ref.reverse()) this.ref.free(t);
    this.owned.be.length = 0;
    this.owned.ref.length = 0;
  }
}

/**
 * Whether a backend holds f16/bf16 KV caches with f32 compute (KvLayer in backend.ts): the CPU
 * backend and the reference; CUDA caches stay computeDType.
 */
export function supportsNarrowKvCache(be: Backend): boolean {
  return be.computeDType === 'f32' && (be.name === 'cpu' || be.name === 'reference');
}

export interface ConformanceCase {
  readonly name: string;
  run(h: Harness): Promise<void>;
}

/** Registers `cases` for every conformance target: a suite per available backend, a skip otherwise. */
export function conformanceSuite(
  op: string,
  cases: readonly ConformanceCase[],
  extraIsas: readonly CpuIsa[] = [],
  targetOpts: TargetOptions = {},
): void {
  for (const target of conformanceTargets(extraIsas, targetOpts)) {
    const title = `${op} [${target.name}]`;
    if (target.skipReason !== null) {
      test(title, { skip: target.skipReason }, () => {});
      continue;
    }
    describe(title, () => {
      let be: Backend;
      let ref: Backend;
      before(() => {
        be = target.create();
        ref = createReferenceBackend();
      });
      after(() => {
        be?.dispose();
        ref?.dispose();
      });
      for (const c of cases) {
        it(c.name, async (t) => {
          const before = be.memoryStats();
          const h = new Harness(be, ref, new Rng(hashString(`${op}/${c.name}`)), t);
          try {
            await c.run(h);
          } finally {
            h.freeAll();
          }
          await be.synchronize();
          assert.deepEqual(be.memoryStats(), before, `${c.name}: backend memory not returned after free()`);
        });
      }
    });
  }
}
