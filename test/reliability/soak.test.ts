// The CI-sized soak (the long one: bench/soak/soak.ts): a real `tokenmill serve` on loopback with a
// tiny random model, 16 closed-loop clients for 3 waves (10% disconnecting before the headers, after
// the first chunk or mid-stream; non-streaming, n > 1, logprobs and stop strings mixed in), then
// twice the measured capacity offered open-loop. After each wave with nothing running, every KV
// block is free again; no 5xx that is not a shed 503; every stream the client read to the end
// ended with [DONE] and carried no error event; overload is shed with 503 + Retry-After instead of clients timing out.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { startServe, type ServeProcess } from '../../bench/soak/serve-process.js';
import { runOverload, runSoak } from '../../bench/soak/soak-run.js';

const work = mkdtempSync(join(tmpdir(), 'tm-soak-ci-'));
let server: ServeProcess;
const MODEL = 'soak-tiny';

before(async () => {
  const dir = join(work, 'model');
  writeRandomModel(dir, { ...MODEL_PRESETS['tiny-llama']!.config, max_position_embeddings: 256 }, { seed: 5 });
  // A small pool (64 blocks of 16) so the soak also runs the KV cache full and preempts.
  server = await startServe([
    '--model',
    dir,
    '--served-model-name',
    MODEL,
    '--threads',
    '1',
    '--usd-per-hour',
    '1',
    '--kv-cache-memory',
    '256KiB',
    '--max-num-seqs',
    '8',
  ]);
});
after(async () => {
  if (server) {
    const e = await server.stop('SIGTERM');
    assert.equal(e.code, 0, server.log().slice(-2000));
  }
  rmSync(work, { recursive: true, force: true });
});

test('soak: 3 waves x 16 clients, mixed requests, 10% disconnects: no 5xx, no leaked KV blocks', { timeout: 180_000 }, async () => {
  const r = await runSoak({
    url: server.url,
    model: MODEL,
    clients: 16,
    waves: 3,
    waveMs: 10_000,
    seed: 3,
    maxTokens: 48,
    disconnectShare: 0.1,
    timeoutMs: 60_000,
    windowMs: 10_000,
  });
  const summary = JSON.stringify(
    r.waves.map((w) => ({ n: w.requests, s: w.byStatus, d: w.disconnects, kv: `${w.freeBlocks}/${w.totalBlocks}` })),
  );
  assert.equal(r.errors5xx, 0, summary);
  assert.equal(r.timeouts, 0, summary);
  // Each truncation carries what the client saw (error, abort reason, bytes, last event): a rare one explains itself.
  assert.equal(r.truncated, 0, `${r.truncated} responses ended early: ${JSON.stringify(r.truncations)} ${summary}`);
  // A failure after the headers arrives as an error event inside the 200 stream: as much a failure as a 5xx.
  assert.equal(r.streamErrors, 0, `${r.streamErrors} streams carried an error: ${JSON.stringify(r.streamErrorSamples)}`);
  for (const w of r.waves) {
    assert.ok(w.totalBlocks > 0, `wave ${w.wave}: /metrics has no KV block gauges`);
    assert.equal(w.leakedBlocks, 0, `wave ${w.wave}: ${w.freeBlocks}/${w.totalBlocks} blocks free with nothing running`);
    assert.ok(w.requests > 16, `wave ${w.wave} served only ${w.requests}`);
  }
  const disconnects = r.waves.reduce(
    (acc, w) => {
      for (const [k, v] of Object.entries(w.disconnects)) acc[k] = (acc[k] ?? 0) + v;
      return acc;
    },
    {} as Record<string, number>,
  );
  for (const mode of ['before-headers', 'after-first-chunk', 'mid-stream'])
    assert.ok((disconnects[mode] ?? 0) > 0, `no ${mode} disconnects: ${JSON.stringify(disconnects)}`);
  assert.ok((r.finishReasons.stop ?? 0) > 0, JSON.stringify(r.finishReasons));
  // A leak check, not a figure: RSS after the last wave stays within 2x the warm-up wave's.
  assert.ok(r.rssLastBytes < 2 * r.rssWarmBytes, `RSS ${r.rssWarmBytes} -> ${r.rssLastBytes}`);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});

test('overload: twice the measured capacity is shed (503 + Retry-After), not timed out', { timeout: 180_000 }, async () => {
  const r = await runOverload({
    url: server.url,
    model: MODEL,
    calibrateClients: 8,
    calibrateMs: 5_000,
    multiple: 2,
    durationMs: 10_000,
    seed: 4,
    maxTokens: 48,
    timeoutMs: 30_000,
  });
  const summary = JSON.stringify(r);
  assert.equal(r.timeouts, 0, summary);
  assert.equal(r.otherErrors, 0, summary);
  assert.equal(r.shedWithoutRetryAfter, 0, summary);
  // Default admission control (no --max-queue given): the excess is refused at once.
  assert.ok(r.shed > 0, summary);
  assert.ok(r.ok > 0, summary);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});
