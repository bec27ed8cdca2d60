// Rotary-embedding inverse frequencies computed on the host (f64, rounded to f32 once), with the
// model's scaling (llama3 frequency-dependent, linear) baked in; the model uploads them once.
import type { ModelConfig } from './types.js';

/** invFreq[i] = 1 / theta^(2i / headDim), i < headDim / 2, then scaled. Returns f32 [headDim/2]. */
export function computeInvFreq(config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const half = config.headDim / 2;
  const out = new Float32Array(half);
  const s = config.ropeScaling;
  for (let i = 0; i < half; i++) {
    const freq = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
    out[i] =
      s === null
        ? freq
        : s.type === 'linear'
          ? freq / s.factor
          : llama3Scale(freq, s.factor, s.lowFreqFactor ?? 1, s.highFreqFactor ?? 4, s.originalMaxPositionEmbeddings ?? 8192);
  }
  return out;
}

/**
 * Llama 3.1 scaling: wavelengths shorter than original/highFreqFactor are kept, longer than
 * original/lowFreqFactor are divided by factor, and the band between is interpolated smoothly.
 */
export function llama3Scale(freq: number, factor: number, lowFreqFactor: number, highFreqFactor: number, originalMaxPos: number): number {
  const wavelen = (2 * Math.PI) / freq;
  const lowFreqWavelen = originalMaxPos / lowFreqFactor;
  const highFreqWavelen = originalMaxPos / highFreqFactor;
  if (wavelen < highFreqWavelen) return freq;
  if (wavelen > lowFreqWavelen) return freq / factor;
  const smooth = (originalMaxPos / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
  return (1 - smooth) * (freq / factor) + smooth * freq;
}
