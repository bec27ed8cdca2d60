// The bench subcommands end to end without timing assertions: option parsing, `bench serve`
// against the fake OpenAI server (model and price discovered, exact token counts, goodput, run
// file), and `bench engine` on a seeded tiny model (exact lengths through the real engine).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseFloatList, parseIntList, parseShapes, resolveShapes, SHAPE_PRESETS } from '../../../src/cli/bench-common.js';
import { feasibleShapes } from '../../../src/cli/bench-engine.js';
import { benchServe, type ServeBenchCliOptions } from '../../../src/cli/bench-serve.js';
import { recordsOf } from '../../../src/metrics/bench/bench-record.js';
import { ENGINE_DEFAULTS } from '../../../src/engine/engine-defaults.js';
import { cpuAddonAvailable } from '../../../src/runtime/select.js';
import { startFakeServer } from './fake-openai-server.js';

const tmp = mkdtempSync(join(tmpdir(), 'tm-bench-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('option parsing: shapes, lists, presets', () => {
  assert.deepEqual(parseShapes('128/128, 512/256'), [
    { inLen: 128, outLen: 128 },
    { inLen: 512, outLen: 256 },
  ]);
  assert.deepEqual(parseShapes('all'), [...SHAPE_PRESETS]);
  assert.throws(() => parseShapes('128x128'), /IN\/OUT/);
  assert.deepEqual(resolveShapes({ shapes: 'all', in: 64 }), [{ inLen: 64, outLen: 128 }]);
  assert.deepEqual(parseIntList('1,8,32', '--concurrency'), [1, 8, 32]);
  assert.throws(() => parseIntList('1,0', '--concurrency'), /positive integers/);
  assert.deepEqual(parseFloatList('0.5,2,inf', '--request-rate'), [0.5, 2, Infinity]);
  assert.deepEqual(feasibleShapes(SHAPE_PRESETS, 512).run, [{ inLen: 128, outLen: 128 }]);
});

test('bench serve against a fake server: discovered model and price, exact tokens, goodput, run file', async () => {
  const fake = await startFakeServer({ models: ['served-x'], version: { name: 'tokenmill', version: '9.9.9', usd_per_hour: 3.6 } });
  try {
    process.env.TM_TEST_KEY = 'secret-1';
    const o: ServeBenchCliOptions = {
      url: `${fake.url}/v1`,
      apiKeyEnv: 'TM_TEST_KEY',
      concurrency: '1,3',
      numRequests: 6,
      in: 12,
      out: 7,
      vocabSize: 100,
      ignoreEos: true,
      sloTtftMs: 60_000,
      sloItlMs: 60_000,
      timeoutS: 30,
      seed: 1,
      deviceName: 'test box',
      output: join(tmp, 'serve.json'),
    };
    const { records, file } = await benchServe(o);
    assert.equal(file, join(tmp, 'serve.json'));
    assert.equal(records.length, 2);
    assert.equal(fake.requests.length, 12);
    assert.ok(
      fake.requests.every(
        (r) => r.model === 'served-x' && r.auth === 'Bearer secret-1' && Array.isArray(r.prompt) && (r.prompt as number[]).length === 12,
      ),
    );
    for (const r of records) {
      assert.equal(r.engine, 'tokenmill');
      assert.equal(r.engineVersion, '9.9.9');
      assert.equal(r.usdPerHour, 3.6);
      assert.equal(r.generatedTokens, 42);
      assert.equal(r.promptTokens, 72);
      assert.equal(r.goodput?.numGoodRequests, 6);
      assert.ok(r.usdPer1MTok !== null && Math.abs(r.usdPer1MTok - (((3.6 / 3600) * r.wallS) / 42) * 1e6) < 1e-9);
    }
    assert.deepEqual(
      records.map((r) => r.concurrency),
      [1, 3],
    );
    const back = recordsOf(JSON.parse(readFileSync(file, 'utf8')));
    assert.equal(back.length, 2);
  } finally {
    delete process.env.TM_TEST_KEY;
    await fake.close();
  }
});

test('bench engine on a seeded tiny model: exact prompt and output lengths; the engine options are recorded', async () => {
  const prevCache = process.env.TOKENMILL_CACHE;
  process.env.TOKENMILL_CACHE = join(tmp, 'cache');
  let run: Awaited<ReturnType<typeof import('../../../src/cli/bench.js').benchEngine>>;
  try {
    const { benchEngine } = await import('../../../src/cli/bench.js');
    const device = cpuAddonAvailable().available ? 'cpu' : 'reference';
    run = await benchEngine({
      preset: 'tiny-llama',
      presetDtype: 'f32',
      device,
      threads: 1,
      cudaDtype: 'bf16',
      in: 8,
      out: 4,
      concurrency: '1,2',
      numRequests: 3,
      reps: 2,
      seed: 1,
      usdPerHour: 1,
      peakGbS: 10,
      output: join(tmp, 'engine.json'),
    });
  } finally {
    if (prevCache === undefined) delete process.env.TOKENMILL_CACHE;
    else process.env.TOKENMILL_CACHE = prevCache;
  }
  const { records, file } = run;
  assert.equal(records.length, 2);
  for (const r of records) {
    // serve's defaults (ENGINE_DEFAULTS) with the bench's stated overrides.
    const ec = r.engineConfig as Record<string, unknown>;
    assert.equal(ec.blockSize, ENGINE_DEFAULTS.blockSize);
    assert.equal(ec.enablePrefixCaching, ENGINE_DEFAULTS.enablePrefixCaching);
    assert.equal(ec.maxNumSeqs, Math.min(ENGINE_DEFAULTS.maxNumSeqs, 256));
    assert.equal(ec.maxModelLen, 12);
    assert.equal(ec.kvCacheDType, 'f32');
    assert.equal(r.kind, 'engine');
    assert.equal(r.numRequests, 3);
    assert.equal(r.generatedTokens, 12);
    assert.equal(r.promptTokens, 24);
    assert.equal(r.ttftMs.count, 6, 'two reps x three requests');
    assert.equal(r.itlMs.count, 18);
    assert.equal(r.tokPerSSpread?.runs.length, 2);
    assert.equal(r.peakGbPerS, 10);
    assert.ok(r.gbPerS !== null && r.gbPerS > 0);
    assert.ok(r.usdPer1MTok !== null && r.usdPer1MTok > 0);
    assert.equal(r.usdPerHourSource, 'flag');
  }
  assert.equal(recordsOf(JSON.parse(readFileSync(file, 'utf8'))).length, 2);
});

test("bench engine without --usd-per-hour prices the run at the device's assumed price, marked as assumed (never $0)", async () => {
  const { benchEngine } = await import('../../../src/cli/bench.js');
  const { assumedMachinePrice } = await import('../../../src/metrics/machine-price.js');
  const device = cpuAddonAvailable().available ? 'cpu' : 'reference';
  const prevCache = process.env.TOKENMILL_CACHE;
  process.env.TOKENMILL_CACHE = join(tmp, 'cache');
  let records: Awaited<ReturnType<typeof benchEngine>>['records'];
  try {
    ({ records } = await benchEngine({
      preset: 'tiny-llama',
      presetDtype: 'f32',
      device,
      threads: 1,
      cudaDtype: 'bf16',
      in: 8,
      out: 2,
      concurrency: '1',
      numRequests: 1,
      reps: 1,
      seed: 1,
      peakGbS: 10,
      output: join(tmp, 'engine-assumed.json'),
    }));
  } finally {
    if (prevCache === undefined) delete process.env.TOKENMILL_CACHE;
    else process.env.TOKENMILL_CACHE = prevCache;
  }
  const expected = assumedMachinePrice({ kind: 'cpu', numCores: cpus().length }).usdPerHour;
  for (const r of records) {
    assert.equal(r.usdPerHourSource, 'assumed');
    assert.equal(r.usdPerHour, expected);
    assert.ok(expected > 0 && r.usdPer1MTok !== null && r.usdPer1MTok > 0);
    assert.ok(
      r.notes.some((n) => n.includes('ASSUMED')),
      r.notes.join(' | '),
    );
  }
});
