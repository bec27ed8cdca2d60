// safetensors reader/writer: round trip, sharding, and one typed error per kind of bad file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint, readSafetensorsFile, SafetensorsFile, writeSafetensors, encodeFloats } from '../../src/model/safetensors.js';
import { TokenmillError } from '../../src/util/errors.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'tm-st-'));
}

/** A raw safetensors file from a header object and a data section length. */
function rawFile(path: string, header: unknown, dataBytes: number, headerLenOverride?: bigint): void {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLenOverride ?? BigInt(json.length));
  writeFileSync(path, Buffer.concat([prefix, json, Buffer.alloc(dataBytes)]));
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TokenmillError, `expected TokenmillError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a throw');
}

test('round trip: f32, f16, bf16, i32 tensors and metadata', () => {
  const dir = tmp();
  try {
    const path = join(dir, 'model.safetensors');
    const a = new Float32Array([1, -2, 3.5, 0.25, 7, 8]);
    writeSafetensors(
      path,
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: a },
        { name: 'b', dtype: 'F16', shape: [3], data: encodeFloats(new Float32Array([1, 0.5, -4]), 'F16') },
        { name: 'c', dtype: 'BF16', shape: [2], data: () => encodeFloats(new Float32Array([2, -0.125]), 'BF16') },
        { name: 'd', dtype: 'I32', shape: [2], data: () => [new Int32Array([7]), new Int32Array([-9])] },
        { name: 'e', dtype: 'F32', shape: [0], data: new Float32Array(0) },
      ],
      { format: 'pt' },
    );
    assert.equal(Number(readFileSync(path).readBigUInt64LE(0)) % 8, 0, 'data section is 8-aligned');
    const { tensors, metadata } = readSafetensorsFile(path);
    assert.deepEqual(metadata, { format: 'pt' });
    assert.deepEqual([...tensors.get('a')!.data], [...a]);
    assert.deepEqual(tensors.get('a')!.shape, [2, 3]);
    assert.deepEqual([...tensors.get('b')!.data], [0x3c00, 0x3800, 0xc400]);
    assert.deepEqual([...tensors.get('c')!.data], [0x4000, 0xbe00]);
    assert.deepEqual([...tensors.get('d')!.data], [7, -9]);
    assert.equal(tensors.get('e')!.data.length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writer rejects producers whose bytes disagree with the shape', () => {
  const dir = tmp();
  try {
    assert.equal(
      code(() => writeSafetensors(join(dir, 'x.safetensors'), [{ name: 'a', dtype: 'F32', shape: [3], data: new Float32Array(2) }])),
      'invalid_argument',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sharded checkpoint via index.json, read one at a time', () => {
  const dir = tmp();
  try {
    writeSafetensors(join(dir, 's1.safetensors'), [{ name: 'x', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
    writeSafetensors(join(dir, 's2.safetensors'), [{ name: 'y', dtype: 'F32', shape: [1], data: new Float32Array([3]) }]);
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: { x: 's1.safetensors', y: 's2.safetensors' } }),
    );
    const ck = openCheckpoint(dir);
    assert.deepEqual(ck.tensorNames().sort(), ['x', 'y']);
    assert.deepEqual([...ck.read('x').data], [1, 2]);
    assert.deepEqual([...ck.read('y').data], [3]);
    assert.equal(
      code(() => ck.read('z')),
      'tensor_missing',
    );
    ck.close();
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: '../s1.safetensors' } }));
    assert.equal(
      code(() => openCheckpoint(dir)),
      'safetensors_bad_header',
    );
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: 's2.safetensors' } }));
    assert.equal(
      code(() => openCheckpoint(dir)),
      'tensor_missing',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad files: each gives its own typed error code', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'bad.safetensors');
    const ok = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };
    // truncated: cut a valid file short, and a file shorter than 8 bytes
    writeSafetensors(p, [{ name: 'w', dtype: 'F32', shape: [4], data: new Float32Array(4) }]);
    truncateSync(p, statSync(p).size - 3);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_truncated',
    );
    writeFileSync(p, Buffer.alloc(5));
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_truncated',
    );
    rawFile(p, ok, 16, 1000n); // header length beyond the file
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_truncated',
    );
    // oversized header length (u64 near 2^64)
    rawFile(p, ok, 16, 0xffffffffffffff00n);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_header_too_large',
    );
    rawFile(p, ok, 16, 200n * 1024n * 1024n);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_header_too_large',
    );
    // bad JSON / structure
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(5n);
    writeFileSync(p, Buffer.concat([prefix, Buffer.from('{oops')]));
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_bad_header',
    );
    rawFile(p, [1, 2], 0);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_bad_header',
    );
    rawFile(p, { w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_bad_header',
    );
    rawFile(p, { __metadata__: { a: 1 } }, 0);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_bad_header',
    );
    // dtype outside the allowlist
    rawFile(p, { w: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, 16);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_bad_dtype',
    );
    rawFile(p, { w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, 2);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_bad_dtype',
    );
    // reversed / non-integer offsets
    rawFile(p, { w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 16);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_bad_offsets',
    );
    rawFile(p, { w: { dtype: 'F32', shape: [1], data_offsets: [0.5, 4.5] } }, 16);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_bad_offsets',
    );
    // overlap (also a range nested inside a bigger one)
    rawFile(p, { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, 16);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_overlap',
    );
    rawFile(
      p,
      {
        a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] },
        b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
        c: { dtype: 'F32', shape: [1], data_offsets: [16, 20] },
      },
      32,
    );
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_overlap',
    );
    // size mismatch
    rawFile(p, { w: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, 16);
    assert.equal(
      code(() => SafetensorsFile.open(p)),
      'safetensors_size_mismatch',
    );
    // errors name the file and the tensor
    try {
      SafetensorsFile.open(p);
    } catch (e) {
      assert.match((e as Error).message, /bad\.safetensors/);
      assert.match((e as Error).message, /'w'/);
    }
    assert.equal(
      code(() => openCheckpoint(join(dir, 'nope'))),
      'file_not_found',
    );
    assert.ok(readFileSync(p).length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readPieces: element-aligned pieces of at most maxPieceBytes reassemble each tensor exactly', () => {
  const dir = tmp();
  try {
    const a = new Float32Array(1003).map((_, i) => i * 0.5 - 7);
    const h = encodeFloats(
      new Float32Array(777).map((_, i) => (i % 13) - 6),
      'BF16',
    );
    writeSafetensors(join(dir, 'model.safetensors'), [
      { name: 'a', dtype: 'F32', shape: [17, 59], data: a },
      { name: 'h', dtype: 'BF16', shape: [777], data: h },
    ]);
    const ckpt = openCheckpoint(dir);
    try {
      for (const maxPieceBytes of [1, 7, 64, 1000, 1 << 20]) {
        for (const [name, want] of [
          ['a', a],
          ['h', h],
        ] as const) {
          const got = new (want.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(want.length);
          let next = 0;
          ckpt.readPieces(
            name,
            (data, elemOffset) => {
              assert.equal(elemOffset, next, 'pieces arrive in order, back to back');
              assert.ok(
                data.length >= 1 && data.byteLength <= Math.max(maxPieceBytes, data.BYTES_PER_ELEMENT),
                `piece of ${data.byteLength} bytes`,
              );
              got.set(data as Float32Array & Uint16Array, elemOffset);
              next += data.length;
            },
            maxPieceBytes,
          );
          assert.equal(next, want.length);
          assert.deepEqual(got, want);
        }
      }
    } finally {
      ckpt.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
