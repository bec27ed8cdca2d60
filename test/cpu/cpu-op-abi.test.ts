// The CPU op ABI has one source (src/runtime/cpu/cpu-op-abi.ts): the checked-in native header must be
// what the generator writes from it, and the built addon must report the same payload sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CPU_OP_ABI_HEADER_PATH, renderCpuOpAbiHeader } from '../../scripts/gen-cpu-op-abi.js';
import { CPU_OP_ABI, OP, OP_PAYLOAD_INTS } from '../../src/runtime/cpu/cpu-op-abi.js';
import { loadCpuAddon } from '../../src/runtime/native.js';
import { recordOps } from '../../src/runtime/cpu/cpu-ops.js';

test('native/cpu/op_abi.h is generated from cpu-op-abi.ts (npm run gen:cpu-abi)', () => {
  assert.equal(
    readFileSync(CPU_OP_ABI_HEADER_PATH, 'utf8'),
    renderCpuOpAbiHeader(),
    'native/cpu/op_abi.h is stale: run `npm run gen:cpu-abi`',
  );
});

test('op codes are the table rows; every op has a recorder', () => {
  CPU_OP_ABI.forEach((o, i) => assert.equal(OP[o.name], i + 1));
  assert.deepEqual(Object.keys(recordOps).sort(), CPU_OP_ABI.map((o) => o.name).sort());
});

const addon = loadCpuAddon().addon;
test('the built CPU addon speaks the same op ABI', { skip: addon === null ? 'cpu addon not built' : false }, () => {
  assert.deepEqual([...addon!.opPayloadInts], OP_PAYLOAD_INTS);
});

test('addon errors carry the status name as code; async failures surface once in waitIdle', {
  skip: addon === null ? 'cpu addon not built' : false,
}, async () => {
  const a = addon!;
  const e = a.createEngine(1, '');
  const code = (f: () => unknown): string => {
    try {
      f();
    } catch (err) {
      return (err as { code: string }).code;
    }
    return 'none';
  };
  try {
    assert.equal(
      code(() => a.engineInfo({} as never)),
      'invalid_argument',
    );
    assert.equal(
      code(() => a.flush(e, Int32Array.of(99, 2), 2)),
      'invalid_argument',
    );
    const [id, ab] = a.alloc(e, 64);
    assert.equal(ab.byteLength, 64);
    a.free(e, id, ab);
    assert.equal(ab.byteLength, 0, 'free detaches the ArrayBuffer');
    await a.flushAsync(e, Int32Array.of(99, 2), 2); // resolves; the failure is reported by waitIdle
    assert.equal(
      code(() => a.waitIdle(e)),
      'invalid_argument',
    );
    assert.equal(
      code(() => a.waitIdle(e)),
      'none',
      'reported once',
    );
  } finally {
    a.destroyEngine(e);
  }
  assert.equal(
    code(() => a.engineInfo(e)),
    'invalid_argument',
  );
});
