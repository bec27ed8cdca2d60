// Optional device-side sampling: when the backend offers sample() (the CUDA backend does) and every
// row needs only ids (no logprobs, no logit bias), the runner samples on the device and reads back
// 4 bytes per row instead of the f32 logits. The per-row stream id mixes the request's seed, the
// choice index and the output position, so a sequence's draws do not depend on its batch or on
// preemption. Host and device samplers use different PRNGs: a seed reproduces within one backend.
// Constrained rows (a grammar) join when the backend also masks on the device (applyTokenBitmask)
// and the engine enables it: their masks are uploaded for only those rows, then sample() runs.
import type { Backend, DeviceSampleRow, Tensor } from '../runtime/backend.js';
import type { MaskedRow } from '../runtime/token-bitmask.js';
import { invariant } from '../util/invariant.js';

export type { DeviceSampleRow };
import type { Sequence } from './request.js';
import { GREEDY_TEMPERATURE_EPS, type SequenceSampler } from './sampler.js';

/** The optional backend extension: out i32 [S] <- one sampled id per row of logits f32 [S, V]. */
export interface DeviceSamplingBackend {
  sample(out: Tensor, logits: Tensor, rows: readonly DeviceSampleRow[]): void;
}

export function deviceSamplerOf(b: Backend): DeviceSamplingBackend | null {
  const s = (b as Partial<DeviceSamplingBackend>).sample;
  return typeof s === 'function' ? (b as unknown as DeviceSamplingBackend) : null;
}

/** The optional backend extension that masks constrained rows on the device (Backend.applyTokenBitmask). */
export interface DeviceMaskingBackend {
  applyTokenBitmask(logits: Tensor, packed: Int32Array, numMasked: number, words: number): void;
}

export function deviceMaskerOf(b: Backend): DeviceMaskingBackend | null {
  const f = (b as Partial<DeviceMaskingBackend>).applyTokenBitmask;
  return typeof f === 'function' ? (b as unknown as DeviceMaskingBackend) : null;
}

/**
 * Whether a row can be sampled on the device: it needs no logprobs and no logit bias, and a grammar
 * only when masks are applied on the device too (masksOnDevice); otherwise constrained rows are
 * routed to the host sampler, as logit_bias rows are.
 */
export function deviceEligible(sampler: SequenceSampler, masksOnDevice = false): boolean {
  return sampler.params.logprobs === null && sampler.params.logitBias.size === 0 && (sampler.grammar === null || masksOnDevice);
}

/**
 * The rows whose prepared grammar mask must be applied on the device: constrained rows whose mask
 * forbids something (a full mask, free text before a tool-call trigger, needs no upload).
 */
export function deviceMaskRows(samplers: readonly SequenceSampler[]): MaskedRow[] {
  const rows: MaskedRow[] = [];
  samplers.forEach((s, row) => {
    const g = s.grammar;
    if (g === null || g.maskIsFull) return;
    invariant(g.mask !== null, 'device masks: the grammar mask was not prepared for this step');
    rows.push({ row, mask: g.mask });
  });
  return rows;
}

const EMPTY = new Int32Array(0);

function mix32(h: number, x: number): number {
  h = Math.imul(h ^ (x | 0), 0x5bd1e995);
  h ^= h >>> 15;
  return Math.imul(h, 0x27d4eb2d);
}

/** A 53-bit stream id from (seed, choice index, output position). */
export function deviceStreamId(seed: number, index: number, position: number): number {
  const lo = seed % 0x100000000;
  const hi = Math.floor(seed / 0x100000000);
  const a = mix32(mix32(mix32(0x9e3779b9, lo), hi), index) >>> 0;
  const b = mix32(mix32(mix32(0x85ebca6b, position), lo), hi ^ index) & 0x1fffff;
  return b * 0x100000000 + a;
}

export function deviceRow(seq: Sequence, sampler: SequenceSampler): DeviceSampleRow {
  const p = sampler.params;
  const penalties = p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0;
  return {
    temperature: p.temperature < GREEDY_TEMPERATURE_EPS ? 0 : p.temperature,
    topK: p.topK,
    topP: p.topP,
    minP: p.minP,
    repetitionPenalty: p.repetitionPenalty,
    presencePenalty: p.presencePenalty,
    frequencyPenalty: p.frequencyPenalty,
    seed: deviceStreamId(sampler.seed, seq.index, seq.numOutputTokens),
    history: penalties ? Int32Array.from(seq.tokenIds) : EMPTY,
    numGenerated: penalties ? seq.numOutputTokens : 0,
  };
}
