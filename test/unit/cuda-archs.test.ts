// scripts/cuda-archs.mjs: which architectures `npm ci` builds the CUDA addon for (env list, else the
// GPUs nvidia-smi reports, else one to prove the sources compile) and how the compile is spread
// over the cores. Pure functions, driven with fake nvidia-smi output and environments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  archsFromNvidiaSmi,
  compileParallelism,
  FALLBACK_ARCH,
  gencodeArgs,
  normalizeArch,
  selectCudaArchs,
} from '../../scripts/cuda-archs.mjs';

const smi = (stdout: string, status = 0) => ({ status, stdout });

test('normalizeArch accepts nvidia-smi, numeric and sm_/compute_ spellings', () => {
  assert.equal(normalizeArch('9.0'), '90');
  assert.equal(normalizeArch(' 8.6 '), '86');
  assert.equal(normalizeArch('12.0'), '120');
  assert.equal(normalizeArch('sm_89'), '89');
  assert.equal(normalizeArch('compute_90a'), '90a');
  assert.equal(normalizeArch('[N/A]'), null);
  assert.equal(normalizeArch(''), null);
  assert.equal(normalizeArch('ninety'), null);
});

test('the GPUs present: nvidia-smi compute capabilities, deduplicated and sorted, SASS only', () => {
  assert.deepEqual(archsFromNvidiaSmi('9.0\n9.0\n8.0\n9.0\n'), ['80', '90']);
  const eightH100 = selectCudaArchs({ env: {}, nvidiaSmi: smi('9.0\n'.repeat(8)) });
  assert.deepEqual(eightH100.archs, ['90']);
  assert.equal(eightH100.ptx, false);
  assert.equal(eightH100.source, 'gpu');
  assert.match(eightH100.reason, /nvidia-smi compute_cap: sm_90/);
  const mixed = selectCudaArchs({ nvidiaSmi: smi('8.6\r\n8.9\r\n8.6\r\n') });
  assert.deepEqual(mixed.archs, ['86', '89']);
});

test('nvcc but no GPU or no driver: exactly one architecture, with the reason', () => {
  for (const [nvidiaSmi, why] of [
    [null, /nvidia-smi not found/],
    [
      { status: 9, stdout: '', error: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\nMore" },
      /nvidia-smi failed \(NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver\.\)/,
    ],
    [smi(''), /listed no GPU/],
    [smi('[N/A]\n'), /listed no GPU/],
  ] as const) {
    const s = selectCudaArchs({ env: {}, nvidiaSmi });
    assert.deepEqual(s.archs, [FALLBACK_ARCH]);
    assert.equal(s.ptx, false);
    assert.equal(s.source, 'fallback');
    assert.match(s.reason, why);
    assert.match(s.reason, /TOKENMILL_CUDA_ARCHS/);
  }
});

test('TOKENMILL_CUDA_ARCHS wins over the GPUs present and embeds PTX for the highest', () => {
  const s = selectCudaArchs({ env: { TOKENMILL_CUDA_ARCHS: '90, 80,86,89,86' }, nvidiaSmi: smi('9.0\n') });
  assert.deepEqual(s.archs, ['80', '86', '89', '90']);
  assert.equal(s.ptx, true);
  assert.equal(s.source, 'env');
  assert.deepEqual(selectCudaArchs({ env: { TOKENMILL_CUDA_ARCHS: '8.9 sm_90' } }).archs, ['89', '90']);
  assert.deepEqual(selectCudaArchs({ env: { TOKENMILL_CUDA_ARCHS: '  ' }, nvidiaSmi: smi('8.0\n') }).archs, ['80'], 'blank = unset');
  assert.throws(() => selectCudaArchs({ env: { TOKENMILL_CUDA_ARCHS: '90,hopper' } }), /not an architecture: hopper/);
});

test('gencode: SASS per architecture, PTX of the highest only when asked', () => {
  assert.deepEqual(gencodeArgs(['90'], false), ['-gencode', 'arch=compute_90,code=sm_90']);
  assert.deepEqual(gencodeArgs(['80', '90'], true), [
    '-gencode',
    'arch=compute_80,code=sm_80',
    '-gencode',
    'arch=compute_90,code=sm_90',
    '-gencode',
    'arch=compute_90,code=compute_90',
  ]);
});

test('parallelism: one process per core; nvcc --threads only for cores the files leave idle', () => {
  // The CI box: 2 cores, 15 files, one architecture.
  assert.deepEqual(compileParallelism({ cores: 2, tasks: 15, targets: 1 }), { jobs: 2, nvccThreads: 1 });
  // 16 cores, 15 files, 5 targets (4 archs + PTX): every core has a file already.
  assert.deepEqual(compileParallelism({ cores: 16, tasks: 15, targets: 5 }), { jobs: 16, nvccThreads: 1 });
  // 64 cores, 15 files, 5 targets: 4 threads each (about 60 threads), capped at the targets.
  assert.deepEqual(compileParallelism({ cores: 64, tasks: 15, targets: 5 }), { jobs: 64, nvccThreads: 4 });
  assert.deepEqual(compileParallelism({ cores: 64, tasks: 2, targets: 5 }), { jobs: 64, nvccThreads: 5 });
  // A rebuild of one file on 16 cores with one target: nvcc ignores --threads for one target anyway.
  assert.deepEqual(compileParallelism({ cores: 16, tasks: 1, targets: 1 }), { jobs: 16, nvccThreads: 1 });
  // TOKENMILL_CUDA_JOBS overrides the process count (bad values fall back to the cores).
  assert.deepEqual(compileParallelism({ cores: 16, tasks: 15, targets: 5, jobsEnv: '4' }), { jobs: 4, nvccThreads: 4 });
  assert.deepEqual(compileParallelism({ cores: 2, tasks: 15, targets: 1, jobsEnv: 'lots' }), { jobs: 2, nvccThreads: 1 });
});
