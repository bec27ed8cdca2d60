// Loading quantized GGUF files directly: a valid Q4_0 file serves through loadModel / loadTokenizer
// from the file or its directory; corrupted copies (truncated blocks, an unknown type code, an
// unsupported type, an offset past the end, a shape that disagrees with the metadata, a missing
// tensor) each fail before any upload with their typed error naming the tensor, on the reference backend
// (which reads the file) and on the CPU backend (which maps it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import { loadModel } from '../../src/model/loader.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { TokenmillError } from '../../src/util/errors.js';

let work = '';
let good = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'tm-gguf-bad-'));
  const dir = join(work, 'hf');
  writeRandomModel(
    dir,
    {
      architectures: ['LlamaForCausalLM'],
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: 300,
      max_position_embeddings: 64,
    },
    { seed: 5, tokenizer: true },
  );
  good = join(work, 'good.gguf');
  convertToGguf(dir, good, { type: 'q4_0' });
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Byte position of a tensor info's fields in the header: [type field, offset field, first dim]. */
function infoAt(buf: Buffer, name: string): { dims: number; nDims: number; type: number; offset: number } {
  const key = Buffer.concat([Buffer.from(new BigUint64Array([BigInt(name.length)]).buffer), Buffer.from(name)]);
  const at = buf.indexOf(key);
  assert.ok(at > 0, `tensor info of ${name}`);
  const nd = at + key.length;
  const nDims = buf.readUInt32LE(nd);
  return { nDims, dims: nd + 4, type: nd + 4 + 8 * nDims, offset: nd + 8 + 8 * nDims };
}

function variant(label: string, edit: (b: Buffer) => Buffer): string {
  const b = edit(Buffer.from(readFileSync(good)));
  const p = join(work, `${label}.gguf`);
  writeFileSync(p, b);
  return p;
}

/** The same typed error on the reference backend (reads the file) and the CPU backend (maps it), when built. */
async function expectLoadError(file: string, code: string, mention: RegExp): Promise<void> {
  const backends = [() => createReferenceBackend(), ...(cpuAddonAvailable().available ? [() => createCpuBackend({ numThreads: 1 })] : [])];
  for (const make of backends) {
    const be = make();
    try {
      await assert.rejects(loadModel(file, be), (e: unknown) => {
        assert.ok(e instanceof TokenmillError, `typed error, got ${String(e)}`);
        assert.equal(e.code, code, e.message);
        assert.match(e.message, mention);
        return true;
      });
      assert.equal(be.memoryStats().numTensors, 0, `nothing left allocated (${be.name})`);
    } finally {
      be.dispose();
    }
  }
}

test('a Q4_0 GGUF loads from the file and from a directory holding it; tokenizer from its metadata', async () => {
  const dir = join(work, 'dir');
  mkdirSync(dir);
  copyFileSync(good, join(dir, 'model.gguf'));
  const be = createReferenceBackend();
  try {
    for (const p of [good, dir]) {
      const m = await loadModel(p, be);
      assert.equal(m.config.architecture, 'LlamaForCausalLM');
      assert.equal(m.config.numKvHeads, 2);
      m.model.dispose();
      const tok = loadTokenizer(p);
      assert.ok((await tok.encode('hello world')).length > 0);
    }
  } finally {
    be.dispose();
  }
});

test('truncated blocks (file cut inside the last tensor): gguf_invalid naming the tensor', async () => {
  const f = variant('truncated', (b) => b.subarray(0, b.length - 40));
  await expectLoadError(f, 'gguf_invalid', /tensor '.*' data .* lies outside the data section/);
});

test('an unknown type code: gguf_invalid naming the tensor and the code', async () => {
  const f = variant('badtype', (b) => {
    b.writeUInt32LE(99, infoAt(b, 'blk.0.attn_q.weight').type);
    return b;
  });
  await expectLoadError(f, 'gguf_invalid', /'blk\.0\.attn_q\.weight' has unknown ggml type 99/);
});

test('a supported-by-ggml but unsupported-here type (IQ4_NL, same block size as Q4_0): gguf_unsupported_type', async () => {
  const f = variant('iq4nl', (b) => {
    b.writeUInt32LE(20, infoAt(b, 'blk.1.ffn_up.weight').type);
    return b;
  });
  await expectLoadError(f, 'gguf_unsupported_type', /'blk\.1\.ffn_up\.weight' has ggml type IQ4_NL/);
});

test('an offset past the end of the file: gguf_invalid naming the tensor', async () => {
  const f = variant('offset', (b) => {
    b.writeBigUInt64LE(BigInt(1 << 30), infoAt(b, 'blk.0.attn_v.weight').offset);
    return b;
  });
  await expectLoadError(f, 'gguf_invalid', /'blk\.0\.attn_v\.weight' data .* lies outside/);
});

test('a shape that disagrees with the metadata: tensor_shape_mismatch naming the tensor', async () => {
  // attn_k [32, 64] (kv heads 2 x head 16) rewritten as [16, 64]: smaller, so no overlap, wrong shape.
  const f = variant('shape', (b) => {
    const i = infoAt(b, 'blk.1.attn_k.weight');
    b.writeBigUInt64LE(16n, i.dims + 8);
    return b;
  });
  await expectLoadError(f, 'tensor_shape_mismatch', /'blk\.1\.attn_k\.weight' has shape \[16, 64\]/);
});

test('a missing tensor (renamed): gguf_invalid for the stray name before anything uploads', async () => {
  const f = variant('renamed', (b) => {
    const at = b.indexOf(Buffer.from('blk.1.ffn_down.weight'));
    b.write('blk.1.ffn_dowX.weight', at);
    return b;
  });
  await expectLoadError(f, 'gguf_invalid', /unexpected tensor 'blk\.1\.ffn_dowX\.weight'/);
});
