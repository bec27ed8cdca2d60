// TOKENMILL_* variables that change behaviour, read here at the composition root and handed down as
// options (library code reads no environment). Every variable tokenmill reads is listed in
// docs/cli.md ("Environment"); the bench records and the environment fingerprint carry the ones in
// effect (tokenmillEnv, secrets left out).
import type { EngineOptions } from '../engine/engine-config.js';
import type { CpuEngineSwitches, CpuPoolOptions, NativeAddonPaths } from '../runtime/native.js';
import { CPU_ISAS, type SelectOptions } from '../runtime/select.js';
import type { LogLevel } from '../util/logger.js';
import { TokenmillError } from '../util/errors.js';

/**
 * Engine options from the environment: TOKENMILL_DECODE_GRAPHS=1 / 0 turns decode-step graphs on / off
 * (default: on where the backend's graphs are validated for it, i.e. the CPU);
 * TOKENMILL_DEVICE_GRAMMAR_MASKS=1 applies grammar masks on the device (CUDA).
 */
export function engineOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<EngineOptions, 'decodeGraphs' | 'deviceGrammarMasks'> {
  return {
    ...(env.TOKENMILL_DECODE_GRAPHS === '1' ? { decodeGraphs: true } : env.TOKENMILL_DECODE_GRAPHS === '0' ? { decodeGraphs: false } : {}),
    ...(env.TOKENMILL_DEVICE_GRAMMAR_MASKS === '1' ? { deviceGrammarMasks: true } : {}),
  };
}

/**
 * Backend options from the environment: TOKENMILL_NUM_THREADS (CPU worker threads, when --threads is
 * not given), TOKENMILL_CPU_ISA (force a lower kernel ISA), TOKENMILL_ASYNC_MIN_WORK (multiply-adds
 * from which a CPU queue runs off the JS thread), TOKENMILL_CUDA_DTYPE=f16|f32 (CUDA compute dtype
 * instead of bf16), TOKENMILL_CUDA_GRAPHS=0 (no CUDA graphs), TOKENMILL_CUDA_GGML=1 (the CUDA kernels for
 * GGUF block weights, off by default until they have passed on a device), TOKENMILL_GGUF_MMAP=0 (the CPU
 * backend reads GGUF weights into heap copies instead of mapping the file), the CPU pool's
 * (cpuPoolOptionsFromEnv) and the CPU engine's switches (cpuEngineOptionsFromEnv). Unset or unrecognised: the default.
 */
export function backendOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Pick<
  SelectOptions,
  'numThreads' | 'cpuIsa' | 'asyncMinWork' | 'dtype' | 'cudaGraphs' | 'mmap' | 'ggmlKernels' | 'cpuPool' | 'cpuEngine'
> {
  const threads = Number(env.TOKENMILL_NUM_THREADS ?? '');
  const isa = CPU_ISAS.find((i) => i === env.TOKENMILL_CPU_ISA);
  const work = env.TOKENMILL_ASYNC_MIN_WORK;
  const dtype = env.TOKENMILL_CUDA_DTYPE;
  return {
    ...(Number.isInteger(threads) && threads > 0 ? { numThreads: threads } : {}),
    ...(isa !== undefined ? { cpuIsa: isa } : {}),
    ...(work !== undefined && work !== '' && !Number.isNaN(Number(work)) ? { asyncMinWork: Number(work) } : {}),
    ...(dtype === 'f16' || dtype === 'f32' ? { dtype } : {}),
    ...(env.TOKENMILL_CUDA_GRAPHS === '0' ? { cudaGraphs: false } : {}),
    ...(env.TOKENMILL_CUDA_GGML === '1' ? { ggmlKernels: true } : {}),
    ...ggufMmapOptionFromEnv(env),
    ...cpuPoolOptionsFromEnv(env),
    ...cpuEngineOptionsFromEnv(env),
  };
}

/** TOKENMILL_GGUF_MMAP=0: the CPU backend reads GGUF weights into heap copies instead of mapping the file. */
export function ggufMmapOptionFromEnv(env: NodeJS.ProcessEnv = process.env): { mmap?: false } {
  return env.TOKENMILL_GGUF_MMAP === '0' ? { mmap: false } : {};
}

/**
 * CPU engine switches from the environment: TOKENMILL_CPU_PROFILE=1 (per-op wall times in the
 * backend's info()) and TOKENMILL_CPU_HUGEPAGES=0 (no transparent huge pages for large buffers).
 */
export function cpuEngineOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): { cpuEngine?: CpuEngineSwitches } {
  const sw: { profile?: boolean; hugepages?: boolean } = {};
  if (env.TOKENMILL_CPU_PROFILE === '1') sw.profile = true;
  if (env.TOKENMILL_CPU_HUGEPAGES === '0') sw.hugepages = false;
  return Object.keys(sw).length > 0 ? { cpuEngine: sw } : {};
}

/** TOKENMILL_CUBLASLT: the libcublasLt the CUDA addon loads first (runtime/cuda/cuda-config.ts). */
export function cudaConfigFromEnv(env: NodeJS.ProcessEnv = process.env): { cublasLtPath?: string } {
  const path = env.TOKENMILL_CUBLASLT;
  return path !== undefined && path !== '' ? { cublasLtPath: path } : {};
}

/**
 * TOKENMILL_CPU_ADDON / TOKENMILL_CUDA_ADDON: addon binaries elsewhere than build/Release (the bundled
 * GPU suite, scripts/gpu/run-suite.sh), for configureNativeAddons (runtime/native.ts). Empty = default.
 */
export function addonPathsFromEnv(env: NodeJS.ProcessEnv = process.env): NativeAddonPaths {
  const cpu = env.TOKENMILL_CPU_ADDON;
  const cuda = env.TOKENMILL_CUDA_ADDON;
  return {
    ...(cpu !== undefined && cpu !== '' ? { cpuAddonPath: cpu } : {}),
    ...(cuda !== undefined && cuda !== '' ? { cudaAddonPath: cuda } : {}),
  };
}

/**
 * The environment of chat template renderer processes (model/chat-template.ts): this one's, less
 * NODE_OPTIONS, so a preload or inspector flag meant for tokenmill does not start with every renderer.
 */
export function rendererEnvFromEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, NODE_OPTIONS: '' };
}

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/** TOKENMILL_LOG_LEVEL (debug | info | warn | error | silent), or undefined for the logger's default (info). */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel | undefined {
  return LOG_LEVELS.find((l) => l === env.TOKENMILL_LOG_LEVEL);
}

/** TOKENMILL_API_KEYS: the comma-separated API keys (a secret: never in tokenmillEnv()). */
export function apiKeyListFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.TOKENMILL_API_KEYS;
}

/** The TOKENMILL_* variables in effect, secrets (names with KEY, SECRET, or ending in TOKEN) left out. */
export function tokenmillEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('TOKENMILL_') && !/KEY|SECRET|TOKEN$/.test(k) && v !== undefined) out[k] = v;
  return out;
}

/**
 * CPU worker pool options from the environment: TOKENMILL_SPIN_US (microseconds an idle worker spins
 * before sleeping, an integer >= 0) and TOKENMILL_POOL_SOLO=0 (no caller-only fallback under stalls).
 */
export function cpuPoolOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): { cpuPool?: CpuPoolOptions } {
  const pool: { spinUs?: number; poolSolo?: boolean } = {};
  const spin = env.TOKENMILL_SPIN_US;
  if (spin !== undefined && spin !== '') {
    const us = Number(spin);
    if (!Number.isInteger(us) || us < 0 || us > 1e7) {
      const why = `TOKENMILL_SPIN_US must be an integer number of microseconds in [0, 1e7], got '${spin}'`;
      throw new TokenmillError('invalid_argument', why);
    }
    pool.spinUs = us;
  }
  const solo = env.TOKENMILL_POOL_SOLO;
  if (solo !== undefined && solo !== '') pool.poolSolo = solo !== '0';
  return Object.keys(pool).length > 0 ? { cpuPool: pool } : {};
}
