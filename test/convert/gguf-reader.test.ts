// GGUF reader validation: every malformed header is a typed gguf_invalid, never a crash or a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { memorySource, parseGguf } from '../../src/model/convert/gguf.js';
import { TokenmillError } from '../../src/util/errors.js';
import { buildGguf, f32Bytes, type Kv, type TensorSpec } from './gguf-builder.js';

const KVS: Kv[] = [
  { key: 'general.architecture', type: 'str', value: 'llama' },
  { key: 'llama.block_count', type: 'u32', value: 1 },
  { key: 'tokenizer.ggml.tokens', type: 'arr_str', value: ['a', 'b'] },
  { key: 'tokenizer.ggml.scores', type: 'arr_f32', value: [0, -1] },
  { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: 1e-5 },
];
const TENSORS: TensorSpec[] = [
  { name: 'a', dims: [4, 2], type: 0, data: f32Bytes([1, 2, 3, 4, 5, 6, 7, 8]) },
  { name: 'b', dims: [3], type: 0, data: f32Bytes([9, 10, 11]) },
];

const parse = (bytes: Uint8Array) => parseGguf(memorySource(bytes), 'test.gguf');
function rejects(bytes: Uint8Array, re: RegExp): void {
  assert.throws(
    () => parse(bytes),
    (e: unknown) => e instanceof TokenmillError && e.code === 'gguf_invalid' && re.test(e.message),
    re.source,
  );
}

test('a well-formed file parses: metadata, shapes, offsets', () => {
  const g = parse(buildGguf(KVS, TENSORS));
  assert.equal(g.version, 3);
  assert.equal(g.metadata.get('general.architecture'), 'llama');
  assert.deepEqual(g.metadata.get('tokenizer.ggml.tokens'), ['a', 'b']);
  assert.equal(g.metadata.get('llama.attention.layer_norm_rms_epsilon'), 1e-5);
  const a = g.tensors.get('a')!;
  assert.deepEqual(a.shape, [2, 4]);
  assert.equal(a.sizeBytes, 32);
  assert.equal(a.fileOffset % 32, 0);
  assert.equal(g.tensors.get('b')!.fileOffset, a.fileOffset + 32);
});

test('bad magic, unsupported version', () => {
  rejects(buildGguf(KVS, TENSORS, { magic: 'GGML' }), /bad magic/);
  rejects(buildGguf(KVS, TENSORS, { version: 1 }), /version 1/);
  rejects(buildGguf(KVS, TENSORS, { version: 4 }), /version 4/);
  rejects(new Uint8Array(10), /too short/);
});

test('counts too large', () => {
  rejects(buildGguf(KVS, TENSORS, { tensorCount: 2n ** 63n }), /tensor count .* too large/);
  rejects(buildGguf(KVS, TENSORS, { kvCount: 1_000_000_000 }), /key\/value count .* too large/);
  const arr = buildGguf([{ key: 'x', type: 'arr_i32', value: [] }], []);
  new DataView(arr.buffer).setBigUint64(24 + 9 + 4 + 4, 2n ** 40n, true); // header, key 'x', value type, element type
  rejects(arr, /array length .* too large/);
});

test('strings past EOF, truncated files', () => {
  const ok = buildGguf(KVS, TENSORS);
  for (const cut of [30, 60, 100, 150])
    assert.throws(
      () => parse(ok.subarray(0, cut)),
      (e: unknown) => e instanceof TokenmillError && e.code === 'gguf_invalid',
    );
  const longKey = buildGguf([{ key: 'k', type: 'str', value: 'v' }], []);
  // Patch the key length (right after the 24-byte header) to something past the end.
  new DataView(longKey.buffer).setBigUint64(24, 1000n, true);
  rejects(longKey, /length .* too large|past the end/);
});

test('unknown value types, unknown tensor types, bad dims', () => {
  const kv = buildGguf([{ key: 'k', type: 'u32', value: 1 }], []);
  new DataView(kv.buffer).setUint32(24 + 8 + 1, 99, true); // the value type after the key 'k'
  rejects(kv, /unknown value type 99/);
  rejects(buildGguf([], [{ name: 't', dims: [4], type: 4, data: f32Bytes([1, 2, 3, 4]) }]), /unknown ggml type 4/);
  rejects(buildGguf([], [{ name: 't', dims: [4, 1, 1, 1, 1], type: 0, data: f32Bytes([1, 2, 3, 4]) }]), /5 dims/);
  rejects(buildGguf([], [{ name: 't', dims: [0], type: 0, data: new Uint8Array(0) }]), /empty dimension/);
  rejects(buildGguf([], [{ name: 't', dims: [33], type: 2, data: new Uint8Array(40) }]), /not a multiple of the Q4_0 block/);
  rejects(
    buildGguf(
      [
        { key: 'b', type: 'u8', value: 0 },
        { key: 'b', type: 'u8', value: 1 },
      ],
      [],
    ),
    /duplicate key/,
  );
  rejects(buildGguf([], [TENSORS[1]!, { ...TENSORS[1]!, offset: 32 }]), /duplicate tensor/);
  const badBool = buildGguf([{ key: 'k', type: 'bool', value: true }], []);
  badBool[24 + 9 + 4] = 7; // header, key 'k', value type
  rejects(badBool, /bool byte 7/);
});

test('tensor data out of bounds, misaligned, overlapping', () => {
  const oob = buildGguf([], TENSORS);
  rejects(oob.subarray(0, oob.byteLength - 4), /outside the data section/);
  rejects(buildGguf([], [{ ...TENSORS[0]!, offset: 16 }]), /not aligned/);
  rejects(buildGguf([], [TENSORS[0]!, { name: 'c', dims: [8], type: 0, data: f32Bytes([1, 2, 3, 4, 5, 6, 7, 8]), offset: 0 }]), /overlap/);
  rejects(buildGguf([{ key: 'general.alignment', type: 'u32', value: 24 }], []), /power of two/);
});

test('fuzz: mutated or truncated files parse or throw gguf_invalid, never anything else', () => {
  const base = buildGguf(KVS, TENSORS);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat({ max: base.byteLength - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.nat({ max: base.byteLength }),
      (edits, cut) => {
        const b = base.slice(0, Math.max(cut, 24));
        for (const [at, v] of edits) if (at < b.byteLength) b[at] = v;
        try {
          parse(b);
        } catch (e) {
          assert.ok(e instanceof TokenmillError && e.code === 'gguf_invalid', `unexpected ${String(e)}`);
        }
      },
    ),
    { numRuns: 2000 },
  );
});
