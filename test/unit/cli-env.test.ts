// Environment variables are read at the composition root (src/cli/env.ts) and handed down: the
// engine itself ignores TOKENMILL_DECODE_GRAPHS; bench records carry the TOKENMILL_* in effect, minus secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  addonPathsFromEnv,
  backendOptionsFromEnv,
  cpuEngineOptionsFromEnv,
  cudaConfigFromEnv,
  engineOptionsFromEnv,
  logLevelFromEnv,
  rendererEnvFromEnv,
  tokenmillEnv,
} from '../../src/cli/env.js';
import { ChatTemplateRenderer, configureChatTemplateRenderer } from '../../src/model/chat-template.js';
import { configureNativeAddons, loadCpuAddon, loadCudaAddon } from '../../src/runtime/native.js';
import { resolveEngineConfig } from '../../src/engine/engine-config.js';
import { configuredCublasLtPath } from '../../src/runtime/cuda/cuda-config.js';
import { configureCuda } from '../../src/runtime/select.js';
import type { CausalLM } from '../../src/model/types.js';

test('TOKENMILL_DECODE_GRAPHS reaches the engine only through the CLI', () => {
  assert.deepEqual(engineOptionsFromEnv({ TOKENMILL_DECODE_GRAPHS: '1' }), { decodeGraphs: true });
  assert.deepEqual(engineOptionsFromEnv({ TOKENMILL_DECODE_GRAPHS: '0' }), { decodeGraphs: false });
  assert.deepEqual(engineOptionsFromEnv({}), {});
  assert.deepEqual(engineOptionsFromEnv({ TOKENMILL_DEVICE_GRAMMAR_MASKS: '1' }), { deviceGrammarMasks: true });
  const model = {
    config: { maxPositionEmbeddings: 64, eosTokenIds: [2] },
    maxTokensPerStep: 64,
    maxLogitsPerStep: 8,
    kvBytesPerToken: () => 64,
  } as unknown as CausalLM;
  const env = { ...process.env };
  process.env.TOKENMILL_DECODE_GRAPHS = '1';
  try {
    assert.equal(resolveEngineConfig({ model, numBlocks: 8 }).decodeGraphs, 'auto'); // the backend's graphs decide
    assert.equal(resolveEngineConfig({ model, numBlocks: 8, ...engineOptionsFromEnv() }).decodeGraphs, true);
    assert.equal(resolveEngineConfig({ model, numBlocks: 8 }).deviceGrammarMasks, false, 'device masks stay off by default');
  } finally {
    if (env.TOKENMILL_DECODE_GRAPHS === undefined) delete process.env.TOKENMILL_DECODE_GRAPHS;
    else process.env.TOKENMILL_DECODE_GRAPHS = env.TOKENMILL_DECODE_GRAPHS;
  }
});

test('backend options and the log level come from the environment only through the CLI; bad values keep the default', () => {
  assert.deepEqual(
    backendOptionsFromEnv({
      TOKENMILL_NUM_THREADS: '3',
      TOKENMILL_CPU_ISA: 'generic',
      TOKENMILL_ASYNC_MIN_WORK: '0',
      TOKENMILL_CUDA_DTYPE: 'f16',
      TOKENMILL_CUDA_GRAPHS: '0',
      TOKENMILL_CUDA_GGML: '1',
      TOKENMILL_GGUF_MMAP: '0',
    }),
    { numThreads: 3, cpuIsa: 'generic', asyncMinWork: 0, dtype: 'f16', cudaGraphs: false, ggmlKernels: true, mmap: false },
  );
  assert.equal(backendOptionsFromEnv({ TOKENMILL_CUDA_GGML: 'yes' }).ggmlKernels, undefined, 'the ggml kernels stay off unless exactly 1');
  assert.deepEqual(backendOptionsFromEnv({ TOKENMILL_GGUF_MMAP: '1' }), {});
  const bad = { TOKENMILL_NUM_THREADS: '0', TOKENMILL_CPU_ISA: 'sse', TOKENMILL_ASYNC_MIN_WORK: 'x', TOKENMILL_CUDA_DTYPE: 'bf8' };
  assert.deepEqual(backendOptionsFromEnv(bad), {});
  assert.equal(backendOptionsFromEnv({ TOKENMILL_ASYNC_MIN_WORK: 'Infinity' }).asyncMinWork, Infinity);
  assert.equal(logLevelFromEnv({ TOKENMILL_LOG_LEVEL: 'silent' }), 'silent');
  assert.equal(logLevelFromEnv({ TOKENMILL_LOG_LEVEL: 'loud' }), undefined);
});

test('TOKENMILL_CPU_PROFILE / TOKENMILL_CPU_HUGEPAGES become CPU engine switches in the CLI; other values keep the default', () => {
  assert.deepEqual(cpuEngineOptionsFromEnv({}), {});
  assert.deepEqual(cpuEngineOptionsFromEnv({ TOKENMILL_CPU_PROFILE: '1' }), { cpuEngine: { profile: true } });
  assert.deepEqual(cpuEngineOptionsFromEnv({ TOKENMILL_CPU_HUGEPAGES: '0' }), { cpuEngine: { hugepages: false } });
  assert.deepEqual(cpuEngineOptionsFromEnv({ TOKENMILL_CPU_PROFILE: 'yes', TOKENMILL_CPU_HUGEPAGES: '1' }), {});
  const both = backendOptionsFromEnv({ TOKENMILL_CPU_PROFILE: '1', TOKENMILL_CPU_HUGEPAGES: '0' });
  assert.deepEqual(both, { cpuEngine: { profile: true, hugepages: false } });
});

test('TOKENMILL_CUBLASLT becomes the CUDA configuration in the CLI; empty means the default search', () => {
  assert.deepEqual(cudaConfigFromEnv({ TOKENMILL_CUBLASLT: '/opt/lib/libcublasLt.so.13' }), { cublasLtPath: '/opt/lib/libcublasLt.so.13' });
  assert.deepEqual(cudaConfigFromEnv({ TOKENMILL_CUBLASLT: '' }), {});
  assert.deepEqual(cudaConfigFromEnv({}), {});
  configureCuda({ cublasLtPath: '/x/libcublasLt.so' });
  assert.equal(configuredCublasLtPath(), '/x/libcublasLt.so');
  configureCuda({});
  assert.equal(configuredCublasLtPath(), '');
});

test('TOKENMILL_CPU_ADDON / TOKENMILL_CUDA_ADDON become the addon loader configuration; empty means build/Release', () => {
  const paths = addonPathsFromEnv({ TOKENMILL_CPU_ADDON: '/nowhere/cpu.node', TOKENMILL_CUDA_ADDON: '/nowhere/cuda.node' });
  assert.deepEqual(paths, { cpuAddonPath: '/nowhere/cpu.node', cudaAddonPath: '/nowhere/cuda.node' });
  assert.deepEqual(addonPathsFromEnv({ TOKENMILL_CPU_ADDON: '', TOKENMILL_CUDA_ADDON: '' }), {});
  const before = loadCpuAddon();
  try {
    configureNativeAddons(paths);
    assert.equal(loadCpuAddon().addon, null);
    assert.match(loadCpuAddon().reason, /not found/);
    assert.equal(loadCudaAddon().addon, null);
  } finally {
    configureNativeAddons({});
  }
  assert.equal(loadCpuAddon().addon === null, before.addon === null, 'the default search again');
});

test('the CLI hands TOKENMILL_CPU_ADDON to the loader: doctor reports the addon it names as missing', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'tokenmill.js');
  const r = spawnSync(process.execPath, [bin, 'doctor', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, TOKENMILL_CPU_ADDON: '/nowhere/tokenmill_cpu.node', TOKENMILL_LOG_LEVEL: 'warn' },
  });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { cpuAddon: { available: boolean; reason: string } };
  assert.equal(report.cpuAddon.available, false);
});

test('chat template renderers start with the environment the composition root hands down', async () => {
  // A preload that cannot be found ends any node that NODE_OPTIONS reaches before it runs a line.
  const parent = { ...process.env, NODE_OPTIONS: '--require=/nowhere/preload.cjs' };
  const ctx = { messages: [{ role: 'user', content: 'hi' }] };
  try {
    configureChatTemplateRenderer({ env: parent });
    const broken = new ChatTemplateRenderer(5000);
    await assert.rejects(broken.render('{{ messages[0].content }}', ctx), { code: 'chat_template_error' });
    await broken.close();
    configureChatTemplateRenderer({ env: rendererEnvFromEnv(parent) });
    const ok = new ChatTemplateRenderer(5000);
    assert.equal(await ok.render('{{ messages[0].content }}', ctx), 'hi');
    await ok.close();
  } finally {
    configureChatTemplateRenderer({});
  }
});

test('bench records name the TOKENMILL_* variables in effect, never API keys', () => {
  const env = { TOKENMILL_CPU_ISA: 'avx2', TOKENMILL_API_KEYS: 'sk-secret', PATH: '/bin' };
  assert.deepEqual(tokenmillEnv(env), { TOKENMILL_CPU_ISA: 'avx2' });
});
