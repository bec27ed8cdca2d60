// Runs everywhere (CI has no GPU): probeCuda never throws and explains itself; without a usable
// device createCudaBackend throws a typed backend_unavailable error; the dtype codes the TS side
// sends match native/cuda/tm_cuda.h. A machine with no NVIDIA driver is told so ("no NVIDIA driver
// found"), not cudart's "driver version is insufficient".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createCudaBackend, probeCuda } from '../../src/runtime/select.js';
import { DTYPE_CODE } from '../../src/runtime/cuda/cuda-tensor.js';
import { loadCudaAddon } from '../../src/runtime/native.js';
import { cudaProbeReason } from '../../src/runtime/cuda/cuda-probe-reason.js';
import { isTokenmillError } from '../../src/util/errors.js';

test('probeCuda returns a reasoned answer and never throws', () => {
  const p = probeCuda();
  assert.equal(typeof p.available, 'boolean');
  assert.equal(typeof p.reason, 'string');
  if (!p.available) {
    assert.ok(p.reason.length > 0);
    assert.throws(
      () => createCudaBackend(),
      (e: unknown) => isTokenmillError(e) && e.code === 'backend_unavailable',
    );
  } else {
    assert.ok(p.devices.length > 0);
  }
});

test('dtype codes agree with native/cuda/tm_cuda.h', () => {
  const h = readFileSync(new URL('../../native/cuda/tm_cuda.h', import.meta.url), 'utf8');
  const m = /enum TmDType \{([^}]*)\}/.exec(h);
  assert.ok(m !== null, 'TmDType enum not found');
  const codes = Object.fromEntries(
    m[1]!
      .split(',')
      .map((x) => x.trim().split(/\s*=\s*/))
      .map(([k, v]) => [k!, Number(v)]),
  );
  assert.deepEqual(codes, {
    TM_F32: DTYPE_CODE.f32,
    TM_F16: DTYPE_CODE.f16,
    TM_BF16: DTYPE_CODE.bf16,
    TM_I32: DTYPE_CODE.i32,
    TM_I8: DTYPE_CODE.i8,
  });
});

const INSUFFICIENT = 'cudaGetDeviceCount: cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version';

test('cudaProbeReason: no driver at all (driver version 0) says "no NVIDIA driver found"', () => {
  const r = cudaProbeReason(INSUFFICIENT, 0, 13000);
  assert.match(r, /^no NVIDIA driver found/);
  assert.doesNotMatch(r, /insufficient/);
  assert.match(
    cudaProbeReason('cudaGetDeviceCount: cudaErrorNoDevice: no CUDA-capable device is detected', 0, 13000),
    /^no NVIDIA driver found/,
  );
});

test('cudaProbeReason: a real but old driver names both versions; other reasons pass through', () => {
  const r = cudaProbeReason(INSUFFICIENT, 12040, 13000);
  assert.match(r, /driver is too old: it supports CUDA 12\.4, the addon's runtime needs CUDA 13\.0/);
  assert.equal(cudaProbeReason('no CUDA device', 13000, 13000), 'no CUDA device');
});

test('on this machine: a loaded addon that sees no driver reports "no NVIDIA driver found"', (t) => {
  if (loadCudaAddon().addon === null) return t.skip('CUDA addon not built here');
  const p = probeCuda();
  if (p.driverVersion !== null) return t.skip(`an NVIDIA driver is installed (CUDA ${p.driverVersion})`);
  assert.equal(p.available, false);
  assert.match(p.reason, /^no NVIDIA driver found/);
  assert.doesNotMatch(p.reason, /insufficient/);
});
