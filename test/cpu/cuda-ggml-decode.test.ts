// The CUDA kernels' ggml block decoder checked without a GPU: native/cuda/ggml_decode.cuh is compiled
// for the host with g++ (its device intrinsics from test/cpu/cuda-ggml-decode/common.cuh) and must
// decode seeded random blocks of all eight formats exactly as the CPU backend's decoder does (itself
// checked against the spec by the matmulGgml conformance suite). The kernels' arithmetic around the
// decoder (activation quantization, dp4a sums, f32 accumulation) runs only in the GPU suite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const gxx = spawnSync('g++', ['--version'], { encoding: 'utf8' });

test('CUDA ggml group decoder = the CPU block decoder, bit for bit, on every format', {
  skip: gxx.status === 0 ? false : 'g++ not found',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-cuda-decode-'));
  try {
    // The stand-in must sit beside the header: its #include "common.cuh" looks there first.
    copyFileSync(join(root, 'native/cuda/ggml_decode.cuh'), join(dir, 'ggml_decode.cuh'));
    copyFileSync(join(here, 'cuda-ggml-decode/common.cuh'), join(dir, 'common.cuh'));
    const exe = join(dir, 'decode_vs_cpu');
    const args = ['-std=c++17', '-O1', '-ffp-contract=off', '-Wno-unknown-pragmas', `-I${dir}`, `-I${root}`];
    const cc = spawnSync('g++', [...args, join(here, 'cuda-ggml-decode/decode_vs_cpu.cpp'), '-o', exe], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `g++ failed:\n${cc.stderr}`);
    const r = spawnSync(exe, [], { encoding: 'utf8' });
    assert.equal(r.status, 0, `decoders differ:\n${r.stdout}${r.stderr}`);
    assert.equal(r.stdout.trim().split('\n').length, 8, r.stdout);
    assert.match(r.stdout, /type 14: 0 mismatches/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
