// Runs everywhere (CI has no GPU): probeCuda never throws and explains itself; without a usable
// device createCudaBackend throws a typed backend_unavailable error; the dtype codes the TS side
// sends match native/cuda/tm_cuda.h.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createCudaBackend, probeCuda } from '../../src/runtime/select.js';
import { DTYPE_CODE } from '../../src/runtime/cuda/cuda-tensor.js';
import { isTokenmillError } from '../../src/util/errors.js';

test('probeCuda returns a reasoned answer and never throws', () => {
  const p = probeCuda();
  assert.equal(typeof p.available, 'boolean');
  assert.equal(typeof p.reason, 'string');
  if (!p.available) {
    assert.ok(p.reason.length > 0);
    assert.throws(() => createCudaBackend(), (e: unknown) => isTokenmillError(e) && e.code === 'backend_unavailable');
  } else {
    assert.ok(p.devices.length > 0);
  }
});

test('dtype codes agree with native/cuda/tm_cuda.h', () => {
  const h = readFileSync(new URL('../../native/cuda/tm_cuda.h', import.meta.url), 'utf8');
  const m = /enum TmDType \{([^}]*)\}/.exec(h);
  assert.ok(m !== null, 'TmDType enum not found');
  const codes = Object.fromEntries(m[1]!.split(',').map((x) => x.trim().split(/\s*=\s*/)).map(([k, v]) => [k!, Number(v)]));
  assert.deepEqual(codes, { TM_F32: DTYPE_CODE.f32, TM_F16: DTYPE_CODE.f16, TM_BF16: DTYPE_CODE.bf16, TM_I32: DTYPE_CODE.i32, TM_I8: DTYPE_CODE.i8 });
});
