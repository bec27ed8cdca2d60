// GPU comparison (BENCHMARKS.md): tokenmill `bench engine --device cuda` (bf16) vs PyTorch +
// transformers (eager SDPA, and static cache + torch.compile) on the same safetensors, same shapes
// and concurrency, in one run file. Needs python3 with torch + transformers on the machine.
//   node --import tsx bench/engine/compare-gpu.ts --model DIR [--model-name NAME] [--shapes 128/128]
//     [--concurrency 1,8,32] [--reps 3] [--usd-per-hour 2.99] [--modes eager,compile] [--output bench/results]
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { benchEngine } from '../../src/cli/bench.js';
import { fingerprintOrMinimal, formatRecordLine, gitCommitOf, gitDirtyOf, writeRun } from '../../src/cli/bench-common.js';
import type { BenchRecord } from '../../src/metrics/bench/bench-record.js';
import { kvBytesPerToken, weightBytes } from '../../src/metrics/planner.js';
import { loadModelConfig } from '../../src/model/config.js';
import { completePeerRecord, parsePeerLines } from '../peers/transformers.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    'model-name': { type: 'string' },
    shapes: { type: 'string', default: '128/128' },
    concurrency: { type: 'string', default: '1,8,32' },
    reps: { type: 'string', default: '3' },
    'usd-per-hour': { type: 'string', default: '2.99' },
    modes: { type: 'string', default: 'eager,compile' },
    output: { type: 'string', default: 'bench/results' },
    'peer-timeout-s': { type: 'string', default: '3600' },
    python: { type: 'string', default: 'python3' },
    'peer-script': { type: 'string', default: 'bench/peers/transformers_peer.py' },
  },
});
if (!values.model) throw new Error('--model DIR is required');
const loadStart = loadavg();
const usdPerHour = Number(values['usd-per-hour']);
const name = values['model-name'] ?? values.model;
const records: BenchRecord[] = [];
const { records: ours } = await benchEngine({
  model: values.model,
  presetDtype: 'f32',
  device: 'cuda',
  cudaDtype: 'bf16',
  shapes: values.shapes!,
  concurrency: values.concurrency!,
  reps: Number(values.reps),
  seed: 1,
  usdPerHour,
  // The engine half is saved on its own first, so a peer that runs out of time loses nothing of it.
  output: values.output!.endsWith('.json') ? values.output!.replace(/\.json$/, '-tokenmill.json') : values.output!,
});
records.push(...ours.map((r) => ({ ...r, model: name })));
for (const r of ours) console.log(formatRecordLine({ ...r, model: name }));
const peer = spawnSync(
  values.python!,
  [
    values['peer-script']!,
    '--model',
    values.model,
    '--model-name',
    name,
    '--modes',
    values.modes!,
    '--shapes',
    values.shapes!,
    '--concurrency',
    values.concurrency!,
    '--reps',
    values.reps!,
  ],
  {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 28,
    timeout: Number(values['peer-timeout-s']) * 1000,
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  },
);
if (peer.status !== 0) console.error(`compare-gpu: transformers peer exited with ${peer.status}; records so far are kept`);
const c = loadModelConfig(values.model);
const fp = await fingerprintOrMinimal(values.model);
for (const line of parsePeerLines(peer.stdout ?? '')) {
  const r = completePeerRecord(line, {
    usdPerHour,
    weightBytes: weightBytes(c, 'bf16'),
    kvBytesPerToken: kvBytesPerToken(c, 'bf16'),
    commit: gitCommitOf(fp),
    dirty: gitDirtyOf(fp),
    fingerprint: fp,
  });
  records.push(r);
  console.log(formatRecordLine(r));
}
const file = writeRun(records, {
  out: values.output!,
  kind: 'compare-gpu',
  label: 'cuda',
  command: `node bench/engine/compare-gpu.ts ${process.argv.slice(2).join(' ')}`,
  loadStart,
});
console.log(`compare-gpu: wrote ${file}`);
