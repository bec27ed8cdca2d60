// GGUF weights on the CPU backend live in a read-only mapping of the file (Backend.mapWeightFile), not
// in heap copies: the engine's mapped-bytes counter covers every matrix used as stored (all of them for
// qwen2; all but the un-permuted Q/K for llama), logits and greedy tokens equal the read path's bit for
// bit, mapped weights refuse writes (InvariantError, not a fault), a file whose size changed after its header was
// read is gguf_invalid, and (in a child process, RSS from /proc) the weights show up as file-backed
// pages instead of anonymous memory. Skipped without a CPU addon that maps files (it says why).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from '../../src/engine/generate.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import { readGgufFile } from '../../src/model/convert/gguf-reader.js';
import { openGgufModel } from '../../src/model/gguf-model.js';
import { uploadGgufWeights } from '../../src/model/gguf-weights.js';
import { loadModel, type LoadedModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { weightTensors } from '../../src/model/weights.js';
import { loadCpuAddon } from '../../src/runtime/native.js';
import { cpuAddonAvailable, createCpuBackend } from '../../src/runtime/select.js';
import type { CpuBackend } from '../../src/runtime/cpu/cpu-backend.js';
import { TokenmillError } from '../../src/util/errors.js';
import { InvariantError } from '../../src/util/invariant.js';
import { ForwardDriver } from './forward-driver.js';

const addon = cpuAddonAvailable().available ? loadCpuAddon().addon : null;
const skip =
  addon === null ? 'no usable CPU addon' : addon.mapFile === undefined ? 'the CPU addon predates mapped files (rebuild it)' : false;

let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'tm-gguf-mmap-'));
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function gguf(preset: string, type: 'q8_0' | 'f16'): string {
  const dir = join(work, preset);
  writeRandomModel(dir, MODEL_PRESETS[preset]!.config, { seed: 3, init: 'well-conditioned' });
  const file = join(work, `${preset}-${type}.gguf`);
  convertToGguf(dir, file, type === 'f16' ? { dtype: 'f16' } : { type });
  return file;
}

async function logits(m: LoadedModel, ids: readonly number[]): Promise<Float32Array> {
  const d = new ForwardDriver(m.model, { maxSeqLen: 64 });
  try {
    return await d.prefill(ids, { allLogits: true });
  } finally {
    d.dispose();
  }
}

async function greedy(m: LoadedModel): Promise<number[]> {
  const ids: number[] = [];
  const params = samplingParams({ temperature: 0, maxTokens: 12, ignoreEos: true });
  for await (const ev of generate(m.model, null, [1, 5, 9, 2], { params })) ids.push(...ev.tokenIds);
  return ids;
}

for (const [preset, type] of [
  ['tiny-qwen2', 'q8_0'],
  ['tiny-qwen2', 'f16'],
  ['tiny-llama', 'q8_0'],
] as const) {
  test(`${preset} ${type}: matrices used as stored are mapped, not copied; logits and greedy tokens = the read path`, {
    skip,
  }, async () => {
    const file = gguf(preset, type);
    const g = readGgufFile(file);
    const permuted = (n: string): boolean => preset === 'tiny-llama' && /attn_[qk]\.weight$/.test(n);
    const gate = g.tensors.get('blk.0.ffn_gate.weight')!;
    assert.equal(gate.fileOffset + gate.sizeBytes, g.tensors.get('blk.0.ffn_up.weight')!.fileOffset, 'to-gguf writes ffn_gate then ffn_up');
    let expected = 0;
    for (const t of g.tensors.values()) if (t.shape.length === 2 && !permuted(t.name)) expected += t.sizeBytes;
    const mapped = createCpuBackend({ numThreads: 1 }) as CpuBackend;
    const read = createCpuBackend({ numThreads: 1, mmap: false }) as CpuBackend;
    try {
      const [a, b] = [await loadModel(file, mapped), await loadModel(file, read)];
      try {
        assert.equal(mapped.memoryStats().mappedBytes, expected, 'every matrix used as stored lives in the mapping');
        assert.equal(mapped.info().mappedBytes, expected, "the engine's own count agrees");
        assert.equal(read.memoryStats().mappedBytes, undefined);
        assert.equal(read.info().mappedBytes, 0);
        const ids = [1, 7, 3, 250, 42, 9];
        assert.deepEqual(await logits(a, ids), await logits(b, ids), 'logits bit for bit');
        assert.deepEqual(await greedy(a), await greedy(b), 'greedy tokens');
      } finally {
        a.model.dispose();
        b.model.dispose();
      }
      assert.equal(mapped.memoryStats().mappedBytes, undefined, 'disposing the model frees its mapped tensors');
      assert.equal(mapped.info().mappedBytes, 0);
    } finally {
      mapped.dispose();
      read.dispose();
    }
  });
}

test('a mapped weight holds the file bytes and is read-only: upload is refused (InvariantError), not a fault', { skip }, async () => {
  const file = join(work, 'ro.gguf');
  const dir = join(work, 'ro');
  writeRandomModel(dir, MODEL_PRESETS['tiny-qwen2']!.config, { seed: 4 });
  convertToGguf(dir, file, { dtype: 'f32' });
  const info = readGgufFile(file).tensors.get('blk.0.attn_v.weight')!;
  const be = createCpuBackend({ numThreads: 1 }) as CpuBackend;
  try {
    const s = openGgufModel(file);
    const w = uploadGgufWeights(s, be);
    const v = w.layers[0]!.vProj;
    assert.ok(!('kind' in v), 'an F32 matrix is a float tensor');
    const onDisk = new Float32Array(Uint8Array.from(readFileSync(file).subarray(info.fileOffset, info.fileOffset + info.sizeBytes)).buffer);
    assert.deepEqual(await be.read(v), onDisk);
    assert.throws(
      () => be.upload(v, new Float32Array(v.numel)),
      (e: unknown) => e instanceof InvariantError && /read-only mapped weight/.test(e.message),
    );
    for (const t of weightTensors(w)) be.free(t);
    assert.equal(be.memoryStats().mappedBytes, undefined);
    assert.equal(be.info().mappedBytes, 0);
  } finally {
    be.dispose();
  }
});

test('a file whose size changed after its header was read: gguf_invalid, nothing left allocated', { skip }, async () => {
  const file = join(work, 'grown.gguf');
  copyFileSync(gguf('tiny-qwen3', 'q8_0'), file);
  const s = openGgufModel(file);
  appendFileSync(file, Buffer.alloc(64));
  const be = createCpuBackend({ numThreads: 1 });
  try {
    assert.throws(
      () => uploadGgufWeights(s, be),
      (e: unknown) => e instanceof TokenmillError && e.code === 'gguf_invalid' && /changed since/.test(e.message),
    );
    assert.equal(be.memoryStats().numTensors, 0);
  } finally {
    be.dispose();
  }
});

test('process memory: with mmap the weights are file-backed pages (RssFile), without it anonymous heap (child process)', { skip }, () => {
  // ~33 MiB of F32 weights (qwen2: nothing is un-permuted, so every matrix maps).
  const dir = join(work, 'rss');
  const cfg = {
    ...MODEL_PRESETS['tiny-qwen2']!.config,
    hidden_size: 256,
    intermediate_size: 1024,
    num_hidden_layers: 8,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 4096,
  };
  writeRandomModel(dir, cfg, { seed: 6 });
  const file = join(work, 'rss.gguf');
  convertToGguf(dir, file, { dtype: 'f32' });
  const weightMiB = [...readGgufFile(file).tensors.values()].reduce((a, t) => a + t.sizeBytes, 0) / 2 ** 20;
  const run = (extra: string[]): { before: Rss; generated: Rss; mappedMiB: number; ids: number[] } => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/cpu/gguf-rss.ts', file, '--tokens', '4', ...extra], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  const m = run([]);
  const r = run(['--no-mmap']);
  assert.deepEqual(m.ids, r.ids, 'same greedy tokens');
  assert.ok(m.mappedMiB >= 0.95 * weightMiB, `mapped ${m.mappedMiB} MiB of ${weightMiB.toFixed(1)} MiB of weights`);
  const anon = (x: { before: Rss; generated: Rss }): number => x.generated.anonMiB - x.before.anonMiB;
  // Generous bounds (GC heap and allocator noise): mmap saves at least half the weights in anonymous
  // memory, and at least half of them are resident as file pages after a forward pass touched them.
  assert.ok(anon(m) <= anon(r) - 0.5 * weightMiB, `anonymous growth: mmap ${anon(m)} MiB, read ${anon(r)} MiB (weights ${weightMiB} MiB)`);
  assert.ok(m.generated.fileMiB - m.before.fileMiB >= 0.5 * weightMiB, `file-backed growth ${m.generated.fileMiB - m.before.fileMiB} MiB`);
});

interface Rss {
  readonly rssMiB: number;
  readonly anonMiB: number;
  readonly fileMiB: number;
}
