// Device-side sampling for the CUDA backend: packs each row's parameters and token history into
// small device tensors (kept between calls, grown when needed) and launches the sample kernel, so
// only token ids come back to the host. Semantics of each knob: src/engine/sampling-params.ts.
import type { Backend, DeviceSampleRow, Tensor } from '../backend.js';
import type { CudaContextNative } from '../native.js';
import type { CudaTensor } from './cuda-tensor.js';

export interface SamplerScratch {
  tensors: Map<string, Tensor>;
}

function scratch(b: Backend & { samplerScratch: SamplerScratch }, key: string, shapeNumel: number, dtype: 'f32' | 'i32'): CudaTensor {
  const cur = b.samplerScratch.tensors.get(key);
  if (cur !== undefined && cur.numel >= shapeNumel) return cur as CudaTensor;
  if (cur !== undefined) b.free(cur);
  const t = b.alloc([Math.max(1, shapeNumel)], dtype);
  b.samplerScratch.tensors.set(key, t);
  return t as CudaTensor;
}

export function sampleOnDevice(
  b: Backend & { samplerScratch: SamplerScratch },
  ctx: CudaContextNative,
  out: CudaTensor,
  logits: CudaTensor,
  vocab: number,
  rows: readonly DeviceSampleRow[],
): void {
  const S = rows.length;
  if (S === 0) return;
  const maxH = Math.max(1, ...rows.map((r) => r.history.length));
  const params = new Float32Array(S * 8);
  const seeds = new Int32Array(S * 2);
  const hist = new Int32Array(S * maxH).fill(-1);
  const numGen = new Int32Array(S);
  const lens = new Int32Array(S);
  rows.forEach((r, i) => {
    params.set([r.temperature, r.topK, r.topP, r.minP, r.repetitionPenalty, r.presencePenalty, r.frequencyPenalty, 0], i * 8);
    const s = Math.max(0, Math.floor(r.seed));
    seeds[2 * i] = (s % 0x100000000) | 0;
    seeds[2 * i + 1] = Math.floor(s / 0x100000000) | 0;
    hist.set(r.history, i * maxH);
    numGen[i] = Math.min(r.numGenerated, r.history.length);
    lens[i] = r.history.length;
  });
  const pT = scratch(b, 'params', S * 8, 'f32');
  const sT = scratch(b, 'seeds', S * 2, 'i32');
  const hT = scratch(b, 'history', S * maxH, 'i32');
  const gT = scratch(b, 'numGenerated', S, 'i32');
  const lT = scratch(b, 'historyLens', S, 'i32');
  const work = scratch(b, 'work', S * vocab, 'f32');
  const counts = scratch(b, 'counts', S * vocab, 'i32');
  b.upload(pT, params);
  b.upload(sT, seeds);
  b.upload(hT, hist);
  b.upload(gT, numGen);
  b.upload(lT, lens);
  ctx.sample(out.ptr, logits.ptr, work.ptr, counts.ptr, pT.ptr, sT.ptr, hT.ptr, gT.ptr, lT.ptr, S, vocab, maxH);
}
