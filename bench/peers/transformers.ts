// Driver for the GPU peer bench/peers/transformers_peer.py: runs it (or reads its JSON lines from
// --from-jsonl) and completes each record with what only TypeScript may compute here: USD through
// src/metrics/cost.ts, bytes per decode step (planner), GB/s and % of peak (gpu-specs), J/token.
//   node --import tsx bench/peers/transformers.ts --model DIR [--usd-per-hour 2.99] [--python python3]
//     [--peer-args "--modes eager,compile --shapes 128/128 --concurrency 1,8,32"] [--from-jsonl F] [--output DIR|FILE]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { commandLine, fingerprintOrMinimal, formatRecordLine, gitCommitOf, gitDirtyOf, writeRun } from '../../src/cli/bench-common.js';
import { bandwidthFields, bytesPerDecodeStep, costFields, joulesPerToken, type BenchRecord } from '../../src/metrics/bench/bench-record.js';
import { acceleratorForDeviceName } from '../../src/metrics/bench/device-probes.js';
import { kvBytesPerToken, weightBytes } from '../../src/metrics/planner.js';
import { loadModelConfig } from '../../src/model/config.js';

type PeerLine = BenchRecord & { decodeStepsPerS?: number | null };

/** Fill cost, bandwidth and energy into a peer record (the Python side leaves them null). */
export function completePeerRecord(
  r: PeerLine,
  o: { usdPerHour: number; weightBytes: number; kvBytesPerToken: number; commit: string; dirty: boolean | null; fingerprint: unknown },
): BenchRecord {
  const spec = acceleratorForDeviceName(r.device);
  const bytes = bytesPerDecodeStep({
    weightBytes: o.weightBytes,
    kvBytesPerToken: o.kvBytesPerToken,
    batch: r.concurrency,
    avgContextLen: r.inLen + r.outLen / 2,
  });
  const bw = bandwidthFields(bytes, r.decodeStepsPerS ?? null, spec?.bandwidthGbPerS ?? null);
  const { decodeStepsPerS: _drop, ...rest } = r;
  return {
    ...rest,
    commit: o.commit,
    dirty: o.dirty,
    fingerprint: o.fingerprint,
    usdPerHour: o.usdPerHour,
    ...costFields(o.usdPerHour, r.wallS, r.generatedTokens),
    bytesPerDecodeStep: bytes,
    gbPerS: bw.gbPerS,
    pctPeak: bw.pctPeak,
    peakGbPerS: spec?.bandwidthGbPerS ?? null,
    peakSource: spec?.source ?? null,
    joulesPerTok: joulesPerToken(r.avgPowerW, r.wallS, r.generatedTokens),
  };
}

export function parsePeerLines(text: string): PeerLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as PeerLine)
    .filter((r) => r.schema === 'tokenmill.bench/1');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      'model-name': { type: 'string' },
      'usd-per-hour': { type: 'string', default: '0' },
      python: { type: 'string', default: 'python3' },
      'peer-args': { type: 'string', default: '' },
      'from-jsonl': { type: 'string' },
      output: { type: 'string', default: 'bench/results' },
    },
  });
  if (!values.model) throw new Error('--model DIR is required (the same safetensors tokenmill loads)');
  const loadStart = loadavg();
  let text: string;
  if (values['from-jsonl']) text = readFileSync(values['from-jsonl'], 'utf8');
  else {
    const args = [
      'bench/peers/transformers_peer.py',
      '--model',
      values.model,
      ...(values['model-name'] ? ['--model-name', values['model-name']] : []),
      ...values['peer-args']!.split(/\s+/).filter((s) => s.length > 0),
    ];
    const res = spawnSync(values.python!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
    if (res.status !== 0) throw new Error(`transformers_peer.py exited with ${res.status}`);
    text = res.stdout;
  }
  const c = loadModelConfig(values.model);
  const fp = await fingerprintOrMinimal(values.model);
  const usdPerHour = Number(values['usd-per-hour']);
  const records = parsePeerLines(text).map((r) =>
    completePeerRecord(r, {
      usdPerHour,
      weightBytes: weightBytes(c, 'bf16'),
      kvBytesPerToken: kvBytesPerToken(c, 'bf16'),
      commit: gitCommitOf(fp),
      dirty: gitDirtyOf(fp),
      fingerprint: fp,
    }),
  );
  for (const r of records) console.log(formatRecordLine(r));
  const file = writeRun(records, { out: values.output!, kind: 'peer', label: 'transformers', command: commandLine(), loadStart });
  console.log(`transformers peer: wrote ${file}`);
}

if (process.argv[1]?.endsWith('transformers.ts')) await main();
