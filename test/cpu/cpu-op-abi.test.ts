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
  assert.equal(readFileSync(CPU_OP_ABI_HEADER_PATH, 'utf8'), renderCpuOpAbiHeader(), 'native/cpu/op_abi.h is stale: run `npm run gen:cpu-abi`');
});

test('op codes are the table rows; every op has a recorder', () => {
  CPU_OP_ABI.forEach((o, i) => assert.equal(OP[o.name], i + 1));
  assert.deepEqual(Object.keys(recordOps).sort(), CPU_OP_ABI.map((o) => o.name).sort());
});

const addon = loadCpuAddon().addon;
test('the built CPU addon speaks the same op ABI', { skip: addon === null ? 'cpu addon not built' : false }, () => {
  assert.deepEqual([...addon!.opPayloadInts], OP_PAYLOAD_INTS);
});
