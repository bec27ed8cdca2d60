// The long soak (issue 17): starts `tokenmill serve` on loopback with a seeded random model of a
// preset shape (default stories15M), runs C streaming-heavy clients in W waves (10% disconnecting at
// random points; non-streaming, n > 1, logprobs and stop strings mixed in), checks KV blocks and RSS
// after every wave, then (with --overload) offers twice the measured capacity. Writes a JSON record
// under bench/results/ and exits 1 when a target is missed (any 5xx that is not a shed 503, a leaked
// KV block, a response that ended early while the client kept reading (each one is described in the
// log and the record), RSS growth after warm-up over 10%, or in overload a client timeout instead of a 503).
//
//   node --import tsx bench/soak/soak.ts --preset stories15M --clients 200 --waves 6 --wave-s 60 --overload
//
// About 6 min for the soak plus ~2 min for the overload phase on the stories15M shape. Run it alone.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gitCommitOf } from '../../src/cli/bench-common.js';
import { environmentFingerprint } from '../../src/metrics/fingerprint.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { startServe, type ServeProcess } from './serve-process.js';
import { runOverload, runSoak, type OverloadReport } from './soak-run.js';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string' },
    model: { type: 'string' },
    preset: { type: 'string', default: 'stories15M' },
    clients: { type: 'string', default: '200' },
    waves: { type: 'string', default: '6' },
    'wave-s': { type: 'string', default: '60' },
    'max-tokens': { type: 'string', default: '64' },
    /** Share of clients that leave early (before the headers, after the first chunk, mid-stream). */
    'disconnect-share': { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '1' },
    overload: { type: 'boolean', default: false },
    'overload-s': { type: 'string', default: '90' },
    'calibrate-s': { type: 'string', default: '30' },
    threads: { type: 'string' },
    'serve-arg': { type: 'string', multiple: true, default: [] },
    output: { type: 'string' },
  },
});
const int = (s: string | undefined, name: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} ${s}: a positive integer`);
  return n;
};
const clients = int(a.clients, 'clients');
const waves = int(a.waves, 'waves');
const waveMs = int(a['wave-s'], 'wave-s') * 1000;
const seed = int(a.seed, 'seed');
const disconnectShare = Number(a['disconnect-share']);
if (!(disconnectShare >= 0 && disconnectShare <= 1)) throw new Error(`--disconnect-share ${a['disconnect-share']}: a number in [0, 1]`);

let server: ServeProcess | null = null;
let tmp: string | null = null;
let url = a.url;
let modelName = 'soak';
try {
  if (url === undefined) {
    let dir = a.model;
    if (dir === undefined) {
      const preset = MODEL_PRESETS[a.preset!];
      if (preset === undefined) throw new Error(`--preset ${a.preset}: one of ${Object.keys(MODEL_PRESETS).join(', ')}`);
      tmp = mkdtempSync(join(tmpdir(), 'tm-soak-'));
      dir = join(tmp, a.preset!);
      writeRandomModel(dir, preset.config, { seed, dtype: preset.dtype });
    }
    server = await startServe([
      '--model',
      dir,
      '--served-model-name',
      modelName,
      '--usd-per-hour',
      '1',
      ...(a.threads ? ['--threads', a.threads] : []),
      ...a['serve-arg']!,
    ]);
    url = server.url;
  } else {
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    modelName = models.data[0]!.id;
  }
  console.log(`[soak] ${clients} clients x ${waves} waves of ${waveMs / 1000} s against ${url}`);
  const t0 = Date.now();
  const soak = await runSoak({
    url,
    model: modelName,
    clients,
    waves,
    waveMs,
    seed,
    maxTokens: int(a['max-tokens'], 'max-tokens'),
    disconnectShare,
    onWave: (w) => {
      console.log(
        `[soak] wave ${w.wave}: ${w.requests} req ${JSON.stringify(w.byStatus)} shed ${w.shed} 5xx ${w.errors5xx} timeouts ${w.timeouts} ` +
          `truncated ${w.truncated} stream errors ${w.streamErrors} p99 ${w.p99Ms.toFixed(0)} ms, ` +
          `KV ${w.freeBlocks}/${w.totalBlocks} free, RSS ${(w.rssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      for (const t of w.truncations) console.log(`[soak]   truncated: ${JSON.stringify(t)}`);
      for (const e of w.streamErrorSamples) console.log(`[soak]   stream error: ${e}`);
    },
  });
  let overload: OverloadReport | null = null;
  if (a.overload) {
    overload = await runOverload({
      url,
      model: modelName,
      calibrateClients: clients,
      calibrateMs: int(a['calibrate-s'], 'calibrate-s') * 1000,
      durationMs: int(a['overload-s'], 'overload-s') * 1000,
      seed,
      maxTokens: int(a['max-tokens'], 'max-tokens'),
    });
    console.log(
      `[soak] overload: capacity ${overload.capacityRps.toFixed(2)} req/s, offered ${overload.offeredRps.toFixed(2)}: ` +
        `${JSON.stringify(overload.byStatus)}, ok p99 ${overload.okP99Ms.toFixed(0)} ms`,
    );
  }
  const targets = {
    no5xx: soak.errors5xx === 0,
    noTruncatedStreams: soak.truncated === 0,
    noStreamErrors: soak.streamErrors === 0,
    noLeakedBlocks: soak.maxLeakedBlocks === 0,
    rssGrowthUnder10Pct: soak.rssGrowthPct < 10,
    ...(overload ? { overloadShedsNotTimesOut: overload.timeouts === 0 && overload.shed > 0 && overload.shedWithoutRetryAfter === 0 } : {}),
  };
  const fingerprint = await environmentFingerprint({});
  const commit = gitCommitOf(fingerprint);
  const record = {
    kind: 'soak',
    commit,
    preset: a.model ?? a.preset,
    clients,
    waves,
    waveS: waveMs / 1000,
    seed,
    wallS: (Date.now() - t0) / 1000,
    fingerprintId: fingerprint.fingerprintId,
    device: fingerprint,
    targets,
    soak,
    overload,
  };
  const out = resolve(
    a.output ?? `bench/results/soak-${a.preset}-${clients}c-${new Date().toISOString().replace(/[:.]/g, '-')}-${commit}.json`,
  );
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(
    `[soak] targets ${JSON.stringify(targets)}; RSS ${(soak.rssWarmBytes / 2 ** 20).toFixed(0)} -> ` +
      `${(soak.rssLastBytes / 2 ** 20).toFixed(0)} MiB (${soak.rssGrowthPct.toFixed(1)}%); wrote ${out}`,
  );
  process.exitCode = Object.values(targets).every(Boolean) ? 0 : 1;
} finally {
  if (server) {
    const e = await server.stop();
    if (e.code !== 0) console.error(`[soak] server exited ${e.code ?? e.signal}:\n${server.log().slice(-3000)}`);
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
