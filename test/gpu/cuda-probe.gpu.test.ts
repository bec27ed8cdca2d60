// CUDA probe on a GPU machine: device facts, bf16 support, cuBLASLt, versions; and that a CUDA
// failure surfaces as a typed TokenmillError instead of crashing (an impossible allocation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCudaBackend } from '../../src/runtime/select.js';
import { isTokenmillError } from '../../src/util/errors.js';
import { cudaProbe, cudaSkip, writeResult } from './gpu-env.js';

test('probeCuda reports the device', { skip: cudaSkip }, () => {
  const p = cudaProbe;
  writeResult('probe', p);
  assert.ok(p.devices.length >= 1);
  const d = p.devices[0]!;
  assert.match(d.computeCapability, /^\d+\.\d+$/);
  assert.ok(d.totalMemoryBytes > 1e9 && d.freeMemoryBytes > 0 && d.freeMemoryBytes <= d.totalMemoryBytes);
  assert.equal(d.bf16, Number(d.computeCapability.split('.')[0]) >= 8);
  assert.ok(p.driverVersion !== null && p.runtimeVersion !== null);
  console.log(
    `cuda: ${d.name} cc ${d.computeCapability}, ${(d.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB, driver ${p.driverVersion}, ` +
      `runtime ${p.runtimeVersion}, cuBLASLt ${p.cublasLt}`,
  );
});

test('an impossible allocation is a typed out_of_memory error and the backend stays usable', { skip: cudaSkip }, async () => {
  const b = createCudaBackend();
  try {
    assert.throws(
      () => b.alloc([1 << 30, 1 << 12], 'f32'),
      (e: unknown) => isTokenmillError(e) && e.code === 'out_of_memory',
    );
    const t = b.alloc([4], 'f32');
    b.upload(t, Float32Array.of(1, 2, 3, 4));
    assert.deepEqual([...(await b.read(t))], [1, 2, 3, 4]);
  } finally {
    b.dispose();
  }
});
