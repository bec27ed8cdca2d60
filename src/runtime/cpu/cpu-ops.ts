// Op recording for the CPU backend: validates shapes, dtypes and aliasing (our callers' bugs ->
// invariant), then appends one command per op, refs and scalars in the order of its row in
// cpu-op-abi.ts (the recorder checks the counts). Index checks that need tensor contents (ids, slots, block ids) run natively.
import type { AttentionMetadata, KvLayer, Tensor } from '../backend.js';
import type { DType } from '../dtype.js';
import { invariant } from '../../util/invariant.js';
import { OP } from './cpu-tensor.js';
import type { CpuBackend } from './cpu-backend.js';
import { recordGgmlOps } from './cpu-ops-ggml.js';

const F32: readonly DType[] = ['f32'];
/** KV cache dtypes: f32, or f16/bf16 (rounded to nearest even on write, converted to f32 on read). */
const KV: readonly DType[] = ['f32', 'f16', 'bf16'];
const I32: readonly DType[] = ['i32'];
const ANY_FLOAT: readonly DType[] = ['f32', 'f16', 'bf16'];

function checkEps(eps: number): void {
  invariant(Number.isFinite(eps) && eps >= 0, `rmsnorm eps must be finite and >= 0, got ${eps}`);
}

export const recordOps = {
  ...recordGgmlOps, // matmulGgml, embeddingGgml (cpu-ops-ggml.ts)

  embedding(be: CpuBackend, out: Tensor, table: Tensor, ids: Tensor): void {
    const Tab = be.arg(table, 'table', ANY_FLOAT, [-1, -1]);
    const [V, D] = Tab.shape as [number, number];
    const Ids = be.arg(ids, 'ids', I32, [-1]);
    const T = Ids.shape[0]!;
    const O = be.arg(out, 'out', F32, [T, D]);
    be.noAlias('out', O, { table: Tab, ids: Ids });
    const r = be.recorder;
    r.record(OP.embedding, [O, Tab, Ids], [T, D, V]);
  },

  rmsnorm(be: CpuBackend, out: Tensor, x: Tensor, weight: Tensor, eps: number): void {
    checkEps(eps);
    const X = be.arg(x, 'x', F32, [-1, -1]);
    const [R, D] = X.shape as [number, number];
    const O = be.arg(out, 'out', F32, [R, D]);
    const W = be.arg(weight, 'weight', ANY_FLOAT, [D]);
    be.aliasExactOrNone('out', O, 'x', X);
    be.noAlias('out', O, { weight: W });
    const r = be.recorder;
    r.record(OP.rmsnorm, [O, X, W], [R, D, eps]);
  },

  addRmsnorm(be: CpuBackend, out: Tensor, residual: Tensor, x: Tensor, weight: Tensor, eps: number): void {
    checkEps(eps);
    const Res = be.arg(residual, 'residual', F32, [-1, -1]);
    const [R, D] = Res.shape as [number, number];
    const X = be.arg(x, 'x', F32, [R, D]);
    const O = be.arg(out, 'out', F32, [R, D]);
    const W = be.arg(weight, 'weight', ANY_FLOAT, [D]);
    be.aliasExactOrNone('out', O, 'x', X);
    be.noAlias('out', O, { residual: Res, weight: W });
    be.noAlias('residual', Res, { x: X, weight: W });
    const r = be.recorder;
    r.record(OP.addRmsnorm, [O, Res, X, W], [R, D, eps]);
  },

  matmul(be: CpuBackend, out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null): void {
    const X = be.arg(x, 'x', F32, [-1, -1]);
    const [T, K] = X.shape as [number, number];
    const Wt = be.arg(w, 'w', ANY_FLOAT, [-1, K]);
    const N = Wt.shape[0]!;
    const O = be.arg(out, 'out', F32, [T, N]);
    const B = bias === null ? null : be.arg(bias, 'bias', ANY_FLOAT, [N]);
    be.noAlias('out', O, B ? { x: X, w: Wt, bias: B } : { x: X, w: Wt });
    const r = be.recorder;
    r.work += T * N * K;
    r.record(OP.matmul, [O, X, Wt, B], [T, K, N]);
  },

  matmulQ8(be: CpuBackend, out: Tensor, x: Tensor, wq: Tensor, scales: Tensor, bias: Tensor | null): void {
    const X = be.arg(x, 'x', F32, [-1, -1]);
    const [T, K] = X.shape as [number, number];
    const Wq = be.arg(wq, 'wq', ['i8'], [-1, K]);
    const N = Wq.shape[0]!;
    const S = be.arg(scales, 'scales', F32, [N]);
    const O = be.arg(out, 'out', F32, [T, N]);
    const B = bias === null ? null : be.arg(bias, 'bias', ANY_FLOAT, [N]);
    be.noAlias('out', O, B ? { x: X, wq: Wq, scales: S, bias: B } : { x: X, wq: Wq, scales: S });
    const r = be.recorder;
    r.work += T * N * K;
    r.record(OP.matmulQ8, [O, X, Wq, S, B], [T, K, N]);
  },

  rope(be: CpuBackend, q: Tensor, k: Tensor, positions: Tensor, invFreq: Tensor): void {
    const Q = be.arg(q, 'q', F32, [-1, -1, -1]);
    const [T, H, Dh] = Q.shape as [number, number, number];
    invariant(Dh % 2 === 0, () => `rope: head dim ${Dh} is odd`);
    const Kt = be.arg(k, 'k', F32, [T, -1, Dh]);
    const Hkv = Kt.shape[1]!;
    const P = be.arg(positions, 'positions', I32, [T]);
    const F = be.arg(invFreq, 'invFreq', F32, [Dh / 2]);
    be.noAlias('q', Q, { k: Kt, positions: P, invFreq: F });
    be.noAlias('k', Kt, { positions: P, invFreq: F });
    const r = be.recorder;
    r.record(OP.rope, [Q, Kt, P, F], [T, H, Hkv, Dh]);
  },

  ropeKvWriteQkv(be: CpuBackend, qOut: Tensor, qkv: Tensor, cache: KvLayer, positions: Tensor, invFreq: Tensor, slotMapping: Tensor): void {
    const CK = be.arg(cache.k, 'cache.k', KV, [-1, -1, -1, -1]);
    const CV = be.arg(cache.v, 'cache.v', [CK.dtype], CK.shape);
    const [NB, BS, Hkv, Dh] = CK.shape as [number, number, number, number];
    const Q = be.arg(qOut, 'qOut', F32, [-1, -1, Dh]);
    const [T, H] = Q.shape as [number, number];
    invariant(Dh % 2 === 0, () => `ropeKvWriteQkv: head dim ${Dh} is odd`);
    const X = be.arg(qkv, 'qkv', F32, [T, (H + 2 * Hkv) * Dh]);
    const P = be.arg(positions, 'positions', I32, [T]);
    const F = be.arg(invFreq, 'invFreq', F32, [Dh / 2]);
    const S = be.arg(slotMapping, 'slotMapping', I32, [T]);
    const inputs = { qkv: X, positions: P, invFreq: F, slotMapping: S };
    be.noAlias('qOut', Q, { ...inputs, 'cache.k': CK, 'cache.v': CV });
    be.noAlias('cache.k', CK, { ...inputs, 'cache.v': CV });
    be.noAlias('cache.v', CV, inputs);
    const r = be.recorder;
    r.record(OP.ropeKvWriteQkv, [Q, X, CK, CV, P, F, S], [T, H, Hkv, Dh, NB * BS]);
  },

  kvWrite(be: CpuBackend, cache: KvLayer, k: Tensor, v: Tensor, slotMapping: Tensor): void {
    const CK = be.arg(cache.k, 'cache.k', KV, [-1, -1, -1, -1]);
    const CV = be.arg(cache.v, 'cache.v', [CK.dtype], CK.shape);
    const [NB, BS, Hkv, Dh] = CK.shape as [number, number, number, number];
    const Kin = be.arg(k, 'k', F32, [-1, Hkv, Dh]);
    const T = Kin.shape[0]!;
    const Vin = be.arg(v, 'v', F32, [T, Hkv, Dh]);
    const S = be.arg(slotMapping, 'slotMapping', I32, [T]);
    be.noAlias('cache.k', CK, { 'cache.v': CV, k: Kin, v: Vin, slotMapping: S });
    be.noAlias('cache.v', CV, { k: Kin, v: Vin, slotMapping: S });
    const r = be.recorder;
    r.record(OP.kvWrite, [CK, CV, Kin, Vin, S], [T, Hkv, Dh, NB * BS]);
  },

  attention(be: CpuBackend, out: Tensor, q: Tensor, cache: KvLayer, meta: AttentionMetadata, scale: number, slidingWindow: number): void {
    const Q = be.arg(q, 'q', F32, [-1, -1, -1]);
    const [T, H, Dh] = Q.shape as [number, number, number];
    const O = be.arg(out, 'out', F32, [T, H, Dh]);
    const CK = be.arg(cache.k, 'cache.k', KV, [-1, -1, -1, -1]);
    const CV = be.arg(cache.v, 'cache.v', [CK.dtype], CK.shape);
    const [NB, BS, Hkv] = CK.shape as [number, number, number, number];
    invariant(CK.shape[3] === Dh, () => `attention: cache head dim ${CK.shape[3]} != q head dim ${Dh}`);
    invariant(Hkv > 0 && H % Hkv === 0, () => `attention: ${H} query heads not a multiple of ${Hkv} kv heads`);
    invariant(Dh <= 512, () => `attention: head dim ${Dh} > 512 is not supported on cpu`);
    invariant(Number.isFinite(scale), `attention: scale ${scale}`);
    invariant(Number.isInteger(slidingWindow) && slidingWindow >= 0, `attention: slidingWindow ${slidingWindow}`);
    const S = meta.numSeqs;
    invariant(Number.isInteger(S) && S >= 0, () => `attention: numSeqs ${S}`);
    const Qsl = be.arg(meta.queryStartLoc, 'meta.queryStartLoc', I32, [S + 1]);
    const Lens = be.arg(meta.seqLens, 'meta.seqLens', I32, [S]);
    const BT = be.arg(meta.blockTables, 'meta.blockTables', I32, [S, -1]);
    be.noAlias('out', O, { q: Q, 'cache.k': CK, 'cache.v': CV, qsl: Qsl, seqLens: Lens, blockTables: BT });
    const r = be.recorder;
    r.work += T * meta.maxSeqLen * H * Dh * 2;
    r.record(OP.attention, [O, Q, CK, CV, Qsl, Lens, BT], [T, S, BT.shape[1]!, H, Hkv, Dh, BS, NB, scale, slidingWindow]);
  },

  siluMul(be: CpuBackend, out: Tensor, gateUp: Tensor): void {
    const GU = be.arg(gateUp, 'gateUp', F32, [-1, -1]);
    const [T, I2] = GU.shape as [number, number];
    invariant(I2 % 2 === 0, () => `siluMul: gateUp width ${I2} is odd`);
    const O = be.arg(out, 'out', F32, [T, I2 / 2]);
    be.noAlias('out', O, { gateUp: GU });
    const r = be.recorder;
    r.record(OP.siluMul, [O, GU], [T, I2 / 2]);
  },

  gatherRows(be: CpuBackend, out: Tensor, x: Tensor, rows: Tensor): void {
    const X = be.arg(x, 'x', F32, [-1, -1]);
    const [T, D] = X.shape as [number, number];
    const Rows = be.arg(rows, 'rows', I32, [-1]);
    const S = Rows.shape[0]!;
    const O = be.arg(out, 'out', F32, [S, D]);
    be.noAlias('out', O, { x: X, rows: Rows });
    const r = be.recorder;
    r.record(OP.gatherRows, [O, X, Rows], [S, D, T]);
  },

  argmax(be: CpuBackend, out: Tensor, logits: Tensor): void {
    const L = be.arg(logits, 'logits', F32, [-1, -1]);
    const [S, V] = L.shape as [number, number];
    invariant(V >= 1, 'argmax over an empty vocabulary');
    const O = be.arg(out, 'out', I32, [S]);
    be.noAlias('out', O, { logits: L });
    const r = be.recorder;
    r.record(OP.argmax, [O, L], [S, V]);
  },
};
