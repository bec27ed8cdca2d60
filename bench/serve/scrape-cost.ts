// What one /metrics scrape costs while the engine is full: a real server (generated tiny Llama, CPU
// backend, --metrics-compat vllm, --metrics-port) with N streaming requests running (default 256), then
// S scrapes timed two ways: the in-process render (the CPU a scrape takes from the engine's event loop,
// the figure the target is about) and a GET on the metrics port (loopback round trip, which also waits
// for engine steps on the same loop: informational). The endpoint picker scrapes every 50 ms, so the
// target is a render median under 1 ms. Prints both and writes a JSON record with --output.
//
//   node --import tsx bench/serve/scrape-cost.ts --running 256 --scrapes 2000 [--output bench/results/scrape.json]
//
// Run it on a quiet machine; a shared box gives noise, not figures.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { createServer } from '../../src/server/app.js';
import { openModelStack } from '../../src/server/model-stack.js';

const { values: a } = parseArgs({
  options: { running: { type: 'string', default: '256' }, scrapes: { type: 'string', default: '2000' }, output: { type: 'string' } },
});
const numRunning = Number(a.running);
const numScrapes = Number(a.scrapes);
if (!(numRunning >= 1 && numScrapes >= 10)) throw new Error('--running >= 1 and --scrapes >= 10');

const dir = mkdtempSync(join(tmpdir(), 'tm-scrape-'));
const config = { ...MODEL_PRESETS['tiny-llama']!.config, num_hidden_layers: 1, max_position_embeddings: 4096 };
writeRandomModel(dir, config, { seed: 3 });
const metrics = new ServerMetrics({ modelName: 'tiny', usdPerHour: 1, compat: 'vllm' });
const stack = await openModelStack({
  dir,
  modelId: 'tiny',
  device: 'auto',
  kvCacheBytes: 64 << 20,
  maxNumSeqs: numRunning,
  maxModelLen: 2048,
  observer: metrics,
});
const server = await createServer({ engine: stack.engine, frontend: stack.frontend, metrics, metricsPort: 0, seriesIntervalMs: 3_600_000 });
const { url, metricsUrl } = await server.listen({ port: 0 });

// N long streams; each reader drains its body so the server never blocks on backpressure.
const ac = new AbortController();
const streams = Array.from({ length: numRunning }, (_, i) =>
  fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    signal: ac.signal,
    body: JSON.stringify({ model: 'tiny', prompt: `request ${i}: the quick brown fox`, max_tokens: 1900, ignore_eos: true, stream: true }),
  })
    .then(async (r) => {
      for await (const _ of r.body!) {
        /* drain */
      }
    })
    .catch(() => undefined),
);
const deadline = Date.now() + 120_000;
while (stack.engine.stats().numRunning < numRunning) {
  if (Date.now() > deadline) throw new Error(`only ${stack.engine.stats().numRunning} of ${numRunning} requests running after 120 s`);
  await new Promise((r) => setTimeout(r, 50));
}

const quantiles = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { medianMs: q(0.5), p90Ms: q(0.9), p99Ms: q(0.99) };
};
const renderMs: number[] = [];
const httpMs: number[] = [];
let bytes = 0;
let minRunning = Infinity;
for (let i = 0; i < numScrapes; i++) {
  minRunning = Math.min(minRunning, stack.engine.stats().numRunning);
  const t0 = performance.now();
  bytes = (await metrics.render()).body.length;
  renderMs.push(performance.now() - t0);
  if (i % 4 === 0) {
    const t1 = performance.now();
    await (await fetch(metricsUrl!)).text();
    httpMs.push(performance.now() - t1);
  }
  await new Promise((r) => setImmediate(r)); // let engine steps run between scrapes, as in serving
}
ac.abort();
await Promise.all(streams);
await server.close();
await stack.close();
rmSync(dir, { recursive: true, force: true });

const record = {
  bench: 'scrape-cost',
  date: new Date().toISOString(),
  backend: stack.backendReason,
  numRunningTarget: numRunning,
  minRunningDuringScrapes: minRunning,
  numScrapes,
  exposedBytes: bytes,
  render: quantiles(renderMs),
  httpGet: quantiles(httpMs),
  targetRenderMedianMs: 1,
};
const r = record.render;
process.stdout.write(
  `scrape with ${minRunning}+ running: render median ${r.medianMs.toFixed(3)} ms, p90 ${r.p90Ms.toFixed(3)}, p99 ${r.p99Ms.toFixed(3)} ` +
    `(${bytes} bytes); GET median ${record.httpGet.medianMs.toFixed(3)} ms; ` +
    `target render median < 1 ms: ${r.medianMs < 1 ? 'PASS' : 'FAIL'}\n`,
);
if (a.output !== undefined) {
  const out = resolve(a.output);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
}
