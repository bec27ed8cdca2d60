// Op recording for the CPU backend's ggml-weight ops (matmulGgml, embeddingGgml): shape / dtype /
// aliasing checks, then one command each (payload layouts: cpu-op-abi.ts).
import type { Tensor } from '../backend.js';
import type { DType } from '../dtype.js';
import { GGML_BLOCK, ggmlRowElems, type GgmlQuantType } from '../ggml-format.js';
import { invariant } from '../../util/invariant.js';
import { OP } from './cpu-tensor.js';
import type { CpuBackend } from './cpu-backend.js';

const F32: readonly DType[] = ['f32'];
const ANY_FLOAT: readonly DType[] = ['f32', 'f16', 'bf16'];

function typeCode(type: GgmlQuantType): number {
  const f = GGML_BLOCK[type];
  invariant(f !== undefined, () => `unknown ggml type ${String(type)}`);
  return f.code;
}

export const recordGgmlOps = {
  matmulGgml(be: CpuBackend, out: Tensor, x: Tensor, w: Tensor, type: GgmlQuantType, bias: Tensor | null): void {
    const code = typeCode(type);
    const W = be.arg(w, 'w', ['i8'], [-1, -1]);
    const [N, rowBytes] = W.shape as [number, number];
    const K = ggmlRowElems(type, rowBytes);
    const X = be.arg(x, 'x', F32, [-1, K]);
    const T = X.shape[0]!;
    const O = be.arg(out, 'out', F32, [T, N]);
    const B = bias === null ? null : be.arg(bias, 'bias', ANY_FLOAT, [N]);
    be.noAlias('out', O, B ? { x: X, w: W, bias: B } : { x: X, w: W });
    const r = be.recorder;
    r.work += T * N * K;
    r.record(OP.matmulGgml, [O, X, W, B], [T, K, N, rowBytes, code]);
  },

  embeddingGgml(be: CpuBackend, out: Tensor, w: Tensor, type: GgmlQuantType, ids: Tensor): void {
    const code = typeCode(type);
    const W = be.arg(w, 'w', ['i8'], [-1, -1]);
    const [V, rowBytes] = W.shape as [number, number];
    const K = ggmlRowElems(type, rowBytes);
    const Ids = be.arg(ids, 'ids', ['i32'], [-1]);
    const T = Ids.shape[0]!;
    const O = be.arg(out, 'out', F32, [T, K]);
    be.noAlias('out', O, { w: W, ids: Ids });
    const r = be.recorder;
    r.record(OP.embeddingGgml, [O, W, Ids], [T, K, V, rowBytes, code]);
  },
};
