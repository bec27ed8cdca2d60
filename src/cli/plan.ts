// `tokenmill plan`: capacity planner. Reads config.json (model layer), picks an accelerator from
// metrics/gpu-specs.ts and prints metrics/planner.ts's estimate: weights, KV per token, sequences
// that fit, a decode roofline per batch size with $/1M output tokens, and (--measured) estimate vs
// a bench record. All maths lives in the planner; this file only parses, composes and formats.
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { loadModelConfig } from '../model/config.js';
import { ACCELERATOR_KEYS, acceleratorSpec, type AcceleratorSpec } from '../metrics/gpu-specs.js';
import {
  compareMeasured,
  measuredPoints,
  planCapacity,
  PLAN_DTYPES,
  DEFAULT_RESERVE_FRACTION,
  type CapacityPlan,
  type MeasuredComparison,
  type PlanDType,
  type PlanOptions,
  type PlannerModelShape,
} from '../metrics/planner.js';
import { TokenmillError } from '../util/errors.js';
import { choiceArg, floatArg, positiveIntArg } from './options.js';

interface PlanCliOptions {
  readonly model: string;
  readonly gpu: string;
  readonly usdPerHour?: number;
  readonly context?: number;
  readonly dtype: PlanDType;
  readonly kvDtype?: PlanDType;
  readonly measured?: string;
  readonly reserve: number;
  readonly memoryGb?: number;
  readonly bandwidthGbS?: number;
  readonly json?: boolean;
}

export interface PlanReport {
  readonly model: string;
  readonly accelerator: AcceleratorSpec;
  readonly weightDType: PlanDType;
  readonly kvDType: PlanDType;
  readonly plan: CapacityPlan;
  readonly measured: readonly MeasuredComparison[] | null;
  readonly notes: readonly string[];
}

const NOTES = [
  'memory, bandwidth and TFLOP/s are vendor datasheet figures (dense); USD/hour is a typical market price unless --usd-per-hour is given',
  'reserve: a share of device memory held back for the CUDA context, cuBLASLt/attention workspaces, activations and fragmentation',
  'decode roofline: every sequence holds --context tokens of KV; step time = max(bytes / bandwidth, flops / peak): an upper ' +
    "bound, measured / estimate is the engine's efficiency",
];

function fail(message: string): TokenmillError {
  return new TokenmillError('invalid_argument', message);
}

export function buildPlan(o: PlanCliOptions): PlanReport {
  const base = acceleratorSpec(o.gpu);
  if (base === null) throw fail(`--gpu: '${o.gpu}' is not one of ${ACCELERATOR_KEYS.join(', ')}`);
  const accelerator: AcceleratorSpec = {
    ...base,
    ...(o.memoryGb !== undefined ? { memoryGb: o.memoryGb } : {}),
    ...(o.bandwidthGbS !== undefined ? { bandwidthGbPerS: o.bandwidthGbS } : {}),
    ...(o.usdPerHour !== undefined ? { usdPerHour: o.usdPerHour } : {}),
  };
  if (!(accelerator.memoryGb > 0) || !(accelerator.bandwidthGbPerS > 0)) throw fail('--memory-gb and --bandwidth-gb-s must be > 0');
  if (accelerator.usdPerHour < 0) throw fail('--usd-per-hour must be >= 0');
  if (!(o.reserve >= 0 && o.reserve < 1)) throw fail('--reserve must be a fraction in [0, 1)');
  const c = loadModelConfig(o.model);
  const model: PlannerModelShape = {
    numLayers: c.numLayers,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    vocabSize: c.vocabSize,
    tieWordEmbeddings: c.tieWordEmbeddings,
    attentionBias: c.attentionBias,
    qkNorm: c.qkNorm,
  };
  const contextLen = o.context ?? Math.min(c.maxPositionEmbeddings, 4096);
  const notes = [...NOTES];
  if (contextLen > c.maxPositionEmbeddings)
    notes.push(`--context ${contextLen} exceeds the model's max_position_embeddings (${c.maxPositionEmbeddings})`);
  if (o.dtype === 'int8') notes.push('int8: weight-only (W8A16), per-channel scales not counted; the compute roof stays the bf16 one');
  const kvDType = o.kvDtype ?? (o.dtype === 'int8' ? 'bf16' : o.dtype);
  const opts: PlanOptions = {
    model,
    accelerator,
    usdPerHour: accelerator.usdPerHour,
    contextLen,
    weightDType: o.dtype,
    kvDType,
    reserveFraction: o.reserve,
  };
  let measured: MeasuredComparison[] | null = null;
  if (o.measured !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(o.measured, 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file_not_found' : 'invalid_argument';
      throw new TokenmillError(code, `--measured ${o.measured}: ${(e as Error).message}`, { cause: e });
    }
    const points = measuredPoints(json);
    if (points.length === 0) throw fail(`--measured ${o.measured}: no record with a tokPerS (or decodeTokPerS) field`);
    measured = compareMeasured(opts, points);
  }
  return { model: o.model, accelerator, weightDType: o.dtype, kvDType, plan: planCapacity(opts), measured, notes };
}

const gb = (bytes: number): string => `${(bytes / 1e9).toFixed(2)} GB`;
const fmtInt = (n: number): string => n.toLocaleString('en-US');
const fmtTok = (n: number): string => (n >= 100 ? fmtInt(Math.round(n)) : n.toFixed(1));
const fmtUsd = (n: number): string => `$${n >= 1 ? n.toFixed(2) : n >= 0.01 ? n.toFixed(3) : n.toPrecision(3)}`;

export function formatPlan(r: PlanReport): string {
  const p = r.plan;
  const a = r.accelerator;
  const lines = [
    `model        ${r.model}`,
    `params       ${fmtInt(p.params.total)} (embedding ${fmtInt(p.params.embedding)}, lm_head ` +
      `${p.params.lmHead === 0 ? 'tied' : fmtInt(p.params.lmHead)}, layer matrices ${fmtInt(p.params.layerMatrices)}, norms+biases ` +
      `${fmtInt(p.params.small)})`,
    `weights      ${gb(p.weightBytes)} in ${r.weightDType}`,
    `kv/token     ${fmtInt(p.kvBytesPerToken)} bytes in ${r.kvDType}; ${gb(p.kvBytesPerSequence)} per sequence at context ` +
      `${fmtInt(p.contextLen)} (blocks of ${p.blockSize})`,
    `device       ${a.name}: ${a.memoryGb} GB, ${fmtInt(a.bandwidthGbPerS)} GB/s, ${a.bf16Tflops} TFLOP/s bf16 dense [${a.source}]`,
    `price        $${a.usdPerHour}/h`,
    `memory       ${gb(p.memoryBytes)} - weights ${gb(p.weightBytes)} - reserve ${gb(p.reserveBytes)} (` +
      `${(p.reserveFraction * 100).toFixed(0)}%) = KV pool ${gb(Math.max(0, p.kvPoolBytes))}`,
    `max seqs     ${fmtInt(p.maxConcurrentSequences)} concurrent sequences at context ${fmtInt(p.contextLen)}` +
      `${p.kvPoolBytes <= 0 ? ' (the weights do not fit)' : ''}`,
    '',
    'decode roofline (estimate)',
    '  batch   tok/s      step ms   bound     $/1M out tok   fits',
  ];
  for (const d of p.decode) {
    lines.push(
      `  ${String(d.batch).padStart(5)}   ${fmtTok(d.tokPerS).padStart(9)}  ${(d.stepSeconds * 1000).toFixed(3).padStart(8)}   ` +
        `${d.bound.padEnd(8)}  ${fmtUsd(d.usdPer1MTokens).padStart(13)}   ${d.fits ? 'yes' : 'no'}`,
    );
  }
  if (r.measured !== null) {
    lines.push('', 'measured vs estimate');
    for (const m of r.measured) {
      lines.push(
        `  ${m.label}: batch ${m.batch}${m.contextLen !== null ? `, context ${m.contextLen}` : ''}: measured ${fmtTok(m.tokPerS)} ` +
          `tok/s, estimate ${fmtTok(m.estimatedTokPerS)} tok/s, ratio ` +
          `${m.ratio >= 0.1 ? m.ratio.toFixed(2) : m.ratio.toPrecision(2)}`,
      );
    }
  }
  lines.push('', ...r.notes.map((n) => `note: ${n}`));
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('plan')
    .description('capacity planner: weights, KV per token, sequences that fit, decode roofline and $/1M output tokens')
    .requiredOption('--model <dir|config.json>', 'model directory or its config.json')
    .requiredOption('--gpu <name>', `accelerator: ${ACCELERATOR_KEYS.join(', ')}`)
    .option('--usd-per-hour <usd>', "machine price (default: the table's typical price)", floatArg)
    .option('--context <n>', 'KV tokens per sequence (default: min(max_position_embeddings, 4096))', positiveIntArg)
    .option('--dtype <dtype>', `weight dtype: ${PLAN_DTYPES.join(', ')}`, choiceArg(PLAN_DTYPES), 'bf16')
    .option('--kv-dtype <dtype>', 'KV cache dtype (default: the weight dtype; bf16 for int8)', choiceArg(PLAN_DTYPES))
    .option('--reserve <fraction>', 'share of device memory held back for workspaces and activations', floatArg, DEFAULT_RESERVE_FRACTION)
    .option('--memory-gb <gb>', 'override the device memory (GB)', floatArg)
    .option('--bandwidth-gb-s <gbps>', 'override the memory bandwidth (GB/s)', floatArg)
    .option('--measured <file>', 'bench JSON record: print estimate vs measured')
    .option('--json', 'print the plan as JSON')
    .option('--debug', 'print stack traces on errors')
    .action((opts: PlanCliOptions) => {
      const report = buildPlan(opts);
      process.stdout.write(opts.json === true ? JSON.stringify(report, null, 2) + '\n' : formatPlan(report));
    });
}
