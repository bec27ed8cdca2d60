// Throughput of a pool routed by KV events against round-robin: R `tokenmill serve` replicas on
// loopback (generated tiny Llama, CPU backend; --metrics-port, --kv-events-endpoint) behind the
// test-only picker of test/pool/mini-picker.ts, a shared-prefix workload (G groups sharing a P-token
// prefix, each request its own tail), run once per policy on fresh prefix groups, alternating
// ABAB over `rounds`. Prints, per policy, the median over rounds of requests/s, output tok/s and
// the replicas' prefix-cache hit rate, and writes a JSON record with --output. The issue's claim:
// prefix-aware routing beats round-robin on both hit rate and throughput (its prefill is skipped).
//
//   node --import tsx bench/serve/pool-routing.ts --replicas 3 --groups 7 --per-group 8 --prefix 448 \
//     --max-tokens 16 --concurrency 6 --rounds 4 [--output bench/results/pool-routing.json]
//
// --preset picks the generated model (src/model/model-presets.ts): on tiny-llama a prefill costs
// almost nothing, so the routing's extra render round trip can outweigh it; a heavier shape
// (llama3-1b-shape) makes the skipped prefill visible in throughput.
// Run it on a quiet machine (each replica wants its own core); a shared box gives noise, not figures.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Subscriber } from 'zeromq';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { MiniPicker } from '../../test/pool/mini-picker.js';
import { prefixCounters, runThrough, startReplica, workload } from '../../test/pool/replicas.js';

const { values: a } = parseArgs({
  options: {
    replicas: { type: 'string', default: '3' },
    groups: { type: 'string', default: '7' },
    'per-group': { type: 'string', default: '8' },
    prefix: { type: 'string', default: '448' },
    'max-tokens': { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '4' },
    preset: { type: 'string', default: 'tiny-llama' },
    output: { type: 'string' },
  },
});
const int = (k: keyof typeof a): number => {
  const n = Number(a[k]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} ${a[k]}: expected a positive integer`);
  return n;
};
const [numReplicas, groups, perGroup, prefixLen, maxTokens, concurrency, rounds] = (
  ['replicas', 'groups', 'per-group', 'prefix', 'max-tokens', 'concurrency', 'rounds'] as const
).map(int) as [number, number, number, number, number, number, number];

const dir = mkdtempSync(join(tmpdir(), 'tm-pool-bench-'));
const preset = MODEL_PRESETS[a.preset!];
if (preset === undefined) throw new Error(`--preset ${a.preset}: one of ${Object.keys(MODEL_PRESETS).join(', ')}`);
writeRandomModel(dir, { ...preset.config, max_position_embeddings: 2048 }, { seed: 5 });
const sub = new Subscriber({ linger: 0 });
sub.subscribe('kv@');
await sub.bind('tcp://127.0.0.1:0');
const replicas = await Promise.all(
  Array.from({ length: numReplicas }, () => startReplica(dir, sub.lastEndpoint!, ['--kv-cache-memory', '64MiB', '--max-num-seqs', '16'])),
);
const picker = new MiniPicker(sub);
for (const r of replicas) picker.add(r);
picker.start();

type Policy = 'prefix' | 'round-robin';
const runs: Record<Policy, { reqPerS: number; tokPerS: number; hitRate: number }[]> = { prefix: [], 'round-robin': [] };
let seed = 1;
// Warm-up: every replica's KV events reach the picker (ZeroMQ's slow joiner) and the code is hot.
for (let i = 0; i < 100 && replicas.some((r) => picker.cachedBlocks(r.podId) === 0); i++) {
  picker.mode = 'round-robin';
  await runThrough(picker, workload(10_000 + i, numReplicas, 1, prefixLen), { concurrency: numReplicas, maxTokens: 2 });
}
for (let round = 0; round < rounds; round++) {
  for (const mode of (round % 2 === 0 ? ['prefix', 'round-robin'] : ['round-robin', 'prefix']) as Policy[]) {
    picker.mode = mode;
    const prompts = workload(seed++, groups, perGroup, prefixLen);
    const before = await prefixCounters(replicas);
    const t0 = performance.now();
    const r = await runThrough(picker, prompts, { concurrency, maxTokens });
    const s = (performance.now() - t0) / 1000;
    const after = await prefixCounters(replicas);
    if (r.failures.length > 0) throw new Error(`${mode}: ${r.failures.length} requests failed: ${r.failures[0]}`);
    runs[mode].push({
      reqPerS: prompts.length / s,
      tokPerS: r.completionTokens / s,
      hitRate: (after.hits - before.hits) / (after.queries - before.queries),
    });
  }
}
picker.stop();
for (const r of replicas) r.child.kill('SIGTERM');
await Promise.all(replicas.map((r) => r.exit));
sub.close();
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const summary = Object.fromEntries(
  (Object.keys(runs) as Policy[]).map((m) => [
    m,
    {
      reqPerS: median(runs[m].map((x) => x.reqPerS)),
      tokPerS: median(runs[m].map((x) => x.tokPerS)),
      hitRate: median(runs[m].map((x) => x.hitRate)),
    },
  ]),
) as Record<Policy, { reqPerS: number; tokPerS: number; hitRate: number }>;
for (const m of ['prefix', 'round-robin'] as Policy[]) {
  const x = summary[m];
  process.stdout.write(
    `${m.padEnd(12)} ${x.reqPerS.toFixed(2)} req/s  ${x.tokPerS.toFixed(1)} out tok/s  prefix-cache hit rate ${x.hitRate.toFixed(3)}\n`,
  );
}
const gain = summary.prefix.tokPerS / summary['round-robin'].tokPerS - 1;
const hitGain = summary.prefix.hitRate - summary['round-robin'].hitRate;
process.stdout.write(`prefix-aware vs round-robin: throughput ${(gain * 100).toFixed(1)} %, hit rate +${hitGain.toFixed(3)}\n`);
if (a.output !== undefined) {
  const out = resolve(a.output);
  mkdirSync(dirname(out), { recursive: true });
  const config = { preset: a.preset, numReplicas, groups, perGroup, prefixLen, maxTokens, concurrency, rounds };
  writeFileSync(out, `${JSON.stringify({ bench: 'pool-routing', date: new Date().toISOString(), config, summary, runs }, null, 2)}\n`);
}
