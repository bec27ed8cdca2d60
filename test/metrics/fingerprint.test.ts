// fingerprint.ts: streamed hashing, canonical JSON, the stable fingerprintId, model hashes; and the
// reproducibility contract: two runs with the same fingerprint and seed (temperature > 0) give
// identical tokens on a seeded tiny random model, each run on a freshly loaded model.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from '../../src/engine/generate.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import {
  canonicalJson,
  environmentFingerprint,
  fingerprintIdOf,
  modelFingerprint,
  parseCpuinfo,
  parseNvidiaDriverRelease,
  sha256File,
} from '../../src/metrics/fingerprint.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { TokenmillError } from '../../src/util/errors.js';

const work = mkdtempSync(join(tmpdir(), 'tm-fingerprint-'));
after(() => rmSync(work, { recursive: true, force: true }));
const modelDir = join(work, 'tiny');
writeRandomModel(modelDir, MODEL_PRESETS['tiny-llama']!.config, { seed: 21 });

async function sampleOnce(seed: number): Promise<number[]> {
  const backend = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 2 }) : createReferenceBackend();
  const { model } = await loadModel(modelDir, backend, { maxTokensPerStep: 64 });
  try {
    const tok = loadTokenizer(modelDir);
    const prompt = await tok.encode('Once upon a time');
    const ids: number[] = [];
    const params = samplingParams({ temperature: 0.9, topP: 0.95, seed, maxTokens: 24, ignoreEos: true });
    for await (const ev of generate(model, tok, prompt, { params })) ids.push(...ev.tokenIds);
    return ids;
  } finally {
    model.dispose();
    backend.dispose();
  }
}

describe('fingerprint helpers', () => {
  it('sha256File streams: equals a one-shot hash, across chunk boundaries', async () => {
    const p = join(work, 'blob.bin');
    const data = Buffer.alloc((1 << 22) * 2 + 12345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131) & 0xff;
    writeFileSync(p, data);
    assert.equal(await sha256File(p), createHash('sha256').update(data).digest('hex'));
    await assert.rejects(sha256File(join(work, 'absent')), (e) => e instanceof TokenmillError && e.code === 'io_error');
  });

  it('canonical JSON sorts keys at every level, so the id ignores key order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }), '{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
    assert.equal(canonicalJson({ a: 1, b: undefined }), '{"a":1}');
  });

  it('parseCpuinfo: model name and ISA flags', () => {
    const r = parseCpuinfo('processor : 0\nmodel name\t: Test CPU @ 2GHz\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n');
    assert.equal(r.model, 'Test CPU @ 2GHz');
    assert.equal(r.flags.avx2, true);
    assert.equal(r.flags.avx512bw, false);
  });

  it('parseNvidiaDriverRelease: the release from /proc/driver/nvidia/version', () => {
    const proprietary =
      'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version:  gcc version 12.2.0\n';
    const open = 'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (dvs-builder@U16)  Thu Oct 30 2025\n';
    assert.equal(parseNvidiaDriverRelease(proprietary), '550.54.15');
    assert.equal(parseNvidiaDriverRelease(open), '580.159.04');
    assert.equal(parseNvidiaDriverRelease('nothing here'), null);
  });

  it('modelFingerprint: weights, tokenizer and configs hashed; a missing directory is file_not_found', async () => {
    const m = await modelFingerprint(modelDir);
    assert.deepEqual(
      m.weights.map((w) => w.file),
      ['model.safetensors'],
    );
    assert.equal(
      m.weights[0]!.sha256,
      createHash('sha256')
        .update(readFileSync(join(modelDir, 'model.safetensors')))
        .digest('hex'),
    );
    assert.equal(m.tokenizer?.file, 'tokenizer.json');
    assert.ok(m.configs.some((c) => c.file === 'config.json'));
    await assert.rejects(modelFingerprint(join(work, 'nope')), (e) => e instanceof TokenmillError && e.code === 'file_not_found');
    await assert.rejects(modelFingerprint(work), /no \*\.safetensors/);
  });
});

describe('environment fingerprint', () => {
  it('is stable across calls, its id hashes every field, and it changes with the weights', async () => {
    const [a, b] = [await environmentFingerprint({ modelDir }), await environmentFingerprint({ modelDir })];
    assert.deepEqual(a, b);
    assert.match(a.fingerprintId, /^[0-9a-f]{16}$/);
    const { fingerprintId, tokenmillEnv: _env, ...fields } = a;
    assert.equal(fingerprintIdOf(fields), fingerprintId);
    assert.equal(a.node.version, process.version);
    assert.equal(a.tokenmill.version, (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
    assert.match(a.tokenmill.gitCommit, /^([0-9a-f]{40,64}|unknown)$/);
    assert.equal(typeof a.cpuAddon.available, 'boolean');
    const copy = join(work, 'tiny-copy');
    writeRandomModel(copy, MODEL_PRESETS['tiny-llama']!.config, { seed: 21 });
    assert.equal((await environmentFingerprint({ modelDir: copy })).fingerprintId, a.fingerprintId, 'same bytes, another path: same id');
    appendFileSync(join(copy, 'model.safetensors'), Buffer.from([0]));
    assert.notEqual((await environmentFingerprint({ modelDir: copy })).fingerprintId, a.fingerprintId);
    assert.notEqual((await environmentFingerprint()).fingerprintId, a.fingerprintId, 'the model is part of the id');
  });

  it('TOKENMILL_GIT_COMMIT (a container build, passed in by the CLI) overrides git; the variables given are recorded', async () => {
    const f = await environmentFingerprint({ env: { TOKENMILL_GIT_COMMIT: 'abc123', TOKENMILL_CPU_ISA: 'generic' } });
    assert.equal(f.tokenmill.gitCommit, 'abc123');
    assert.equal(f.tokenmill.gitDirty, null);
    assert.deepEqual(f.tokenmillEnv, { TOKENMILL_GIT_COMMIT: 'abc123', TOKENMILL_CPU_ISA: 'generic' });
    if (f.cpuAddon.available) assert.equal(f.cpuAddon.kernelIsa, 'generic', 'the ISA asked for is the one recorded');
    // The library reads no environment: the variable set there changes nothing.
    const prev = process.env.TOKENMILL_GIT_COMMIT;
    process.env.TOKENMILL_GIT_COMMIT = 'def456';
    try {
      assert.notEqual((await environmentFingerprint()).tokenmill.gitCommit, 'def456');
    } finally {
      if (prev === undefined) delete process.env.TOKENMILL_GIT_COMMIT;
      else process.env.TOKENMILL_GIT_COMMIT = prev;
    }
  });

  it('same fingerprint + same seed, temperature 0.9: identical tokens; another seed differs', async () => {
    const fpA = await environmentFingerprint({ modelDir });
    const runA = await sampleOnce(1234);
    const fpB = await environmentFingerprint({ modelDir });
    const runB = await sampleOnce(1234);
    assert.equal(fpA.fingerprintId, fpB.fingerprintId);
    assert.equal(runA.length, 24);
    assert.deepEqual(runA, runB);
    assert.notDeepEqual(await sampleOnce(99), runA, 'sampling is really random across seeds');
  });
});
