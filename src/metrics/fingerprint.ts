// The environment fingerprint every bench record carries: tokenmill version + git commit, Node,
// CPU model and ISA, the CPU addon's kernel ISA and binary hash, the GPU (name, driver, CUDA
// runtime) and, given a model directory, sha256 of its weights and tokenizer (streamed, never read
// whole). Only stable facts belong here (no free memory, no load, no paths), so fingerprintId, a
// hash of all of them, is equal exactly when two runs had the same environment.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCpuAddon } from '../runtime/native.js';
import { probeCuda, type CudaProbe } from '../runtime/select.js';
import { TokenmillError, fileError } from '../util/errors.js';

/** ISA flags that decide which CPU kernels can run. */
export const ISA_FLAGS = [
  'sse4_2',
  'avx',
  'avx2',
  'fma',
  'f16c',
  'avx512f',
  'avx512bw',
  'avx512vl',
  'avx512_vnni',
  'avx_vnni',
  'avx512_bf16',
  'avx512_fp16',
  'amx_bf16',
  'amx_tile',
  'amx_int8',
] as const;

/** Parse /proc/cpuinfo text: the model name and which ISA_FLAGS are present. */
export function parseCpuinfo(text: string): { model: string | null; flags: Record<string, boolean> } {
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? null;
  const flagLine = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(text)?.[1] ?? '';
  const present = new Set(flagLine.trim().split(/\s+/));
  return { model, flags: Object.fromEntries(ISA_FLAGS.map((f) => [f, present.has(f)])) };
}

export interface FileHash {
  /** File name relative to the model directory. */
  readonly file: string;
  readonly sizeBytes: number;
  readonly sha256: string;
}

export interface ModelFingerprint {
  /** *.safetensors (and their index), sorted by name. */
  readonly weights: readonly FileHash[];
  readonly tokenizer: FileHash | null;
  /** config.json, tokenizer_config.json, generation_config.json when present. */
  readonly configs: readonly FileHash[];
}

export interface EnvironmentFingerprint {
  /** sha256 (first 16 hex digits) of every other field, as canonical JSON. */
  readonly fingerprintId: string;
  readonly tokenmill: { readonly version: string; readonly gitCommit: string; readonly gitDirty: boolean | null };
  readonly node: { readonly version: string; readonly platform: string; readonly arch: string };
  readonly cpu: {
    readonly model: string;
    readonly numLogicalCores: number;
    readonly totalMemoryBytes: number;
    readonly isa: readonly string[] | null;
  };
  readonly cpuAddon: { readonly available: boolean; readonly kernelIsa: string | null; readonly binarySha256: string | null };
  readonly gpu: {
    readonly available: boolean;
    readonly devices: readonly { readonly name: string; readonly computeCapability: string; readonly totalMemoryBytes: number }[];
    /** CUDA driver API version (cudaDriverGetVersion, e.g. '13.0'). */
    readonly driverVersion: string | null;
    /** NVIDIA kernel driver release (e.g. '580.159.04') from /proc/driver/nvidia/version; null elsewhere. */
    readonly driverRelease: string | null;
    readonly cudaRuntimeVersion: string | null;
    readonly cublasLt: boolean;
  };
  readonly model: ModelFingerprint | null;
  /** The TOKENMILL_* variables in effect (FingerprintOptions.env; secrets left out by the caller); outside fingerprintId. */
  readonly tokenmillEnv: Readonly<Record<string, string>>;
}

export interface FingerprintOptions {
  /** Hash this model directory's weights, tokenizer and configs. */
  readonly modelDir?: string;
  /** A CUDA probe already taken (doctor probes once). */
  readonly cudaProbe?: CudaProbe;
  /**
   * The TOKENMILL_* variables in effect, read by the composition root (src/cli/env.ts tokenmillEnv):
   * recorded as they are; TOKENMILL_GIT_COMMIT names the build where there is no .git (a container
   * image), TOKENMILL_CPU_ISA is the ISA the CPU addon is asked for.
   */
  readonly env?: Readonly<Record<string, string>>;
}

/** sha256 of a file, streamed in chunks (multi-GB weights never sit in memory). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 22 })
      .on('data', (chunk) => h.update(chunk))
      .on('error', (e) =>
        reject(new TokenmillError('io_error', `cannot read ${path}: ${e.message}`, { cause: e, details: { file: path } })),
      )
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function fingerprintIdOf(fields: Omit<EnvironmentFingerprint, 'fingerprintId' | 'tokenmillEnv'>): string {
  return createHash('sha256').update(canonicalJson(fields)).digest('hex').slice(0, 16);
}

/** The folder holding tokenmill's package.json (src/metrics -> repo, or dist/src/metrics -> package). */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return null;
}

function git(root: string, args: string[]): string | null {
  try {
    return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

function tokenmillInfo(gitCommit: string | undefined): EnvironmentFingerprint['tokenmill'] {
  const root = packageRoot();
  let version = '0.0.0';
  try {
    if (root !== null) version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? version;
  } catch {
    // keep 0.0.0
  }
  // A container image has no .git: the build passes the commit in (Dockerfile ARG GIT_COMMIT).
  if (gitCommit) return { version, gitCommit, gitDirty: null };
  const commit = root === null ? null : git(root, ['rev-parse', 'HEAD']);
  if (commit === null || !/^[0-9a-f]{40,64}$/.test(commit)) return { version, gitCommit: 'unknown', gitDirty: null };
  const status = git(root!, ['status', '--porcelain', '--untracked-files=no']);
  return { version, gitCommit: commit, gitDirty: status === null ? null : status.length > 0 };
}

/** /proc/cpuinfo parsed, or null where there is none (not Linux). */
export function readCpuinfo(): ReturnType<typeof parseCpuinfo> | null {
  try {
    return parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return null;
  }
}

function cpuFacts(): EnvironmentFingerprint['cpu'] {
  const parsed = readCpuinfo();
  return {
    model: parsed?.model ?? cpus()[0]?.model ?? 'unknown',
    numLogicalCores: cpus().length,
    totalMemoryBytes: totalmem(),
    isa: parsed === null ? null : ISA_FLAGS.filter((f) => parsed!.flags[f]),
  };
}

/** What the CPU addon reports: the kernel ISA it picks here (asked for `isa`, '' = best) and its binary's hash. */
async function cpuAddonFacts(isa: string): Promise<EnvironmentFingerprint['cpuAddon']> {
  const { addon, reason } = loadCpuAddon();
  if (addon === null) return { available: false, kernelIsa: null, binarySha256: null };
  let kernelIsa: string | null = null;
  try {
    const engine = addon.createEngine(1, isa);
    try {
      kernelIsa = addon.engineInfo(engine).isa;
    } finally {
      addon.destroyEngine(engine);
    }
  } catch {
    // leave null: the addon loads but cannot start an engine
  }
  const path = reason.startsWith('loaded ') ? reason.slice('loaded '.length) : null;
  const binarySha256 = path !== null && existsSync(path) ? await sha256File(path) : null;
  return { available: true, kernelIsa, binarySha256 };
}

/** The release in /proc/driver/nvidia/version's NVRM line ('... Kernel Module ...  580.159.04  Release Build ...'). */
export function parseNvidiaDriverRelease(text: string): string | null {
  return /^NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s/m.exec(text)?.[1] ?? null;
}

function driverRelease(): string | null {
  try {
    return parseNvidiaDriverRelease(readFileSync('/proc/driver/nvidia/version', 'utf8'));
  } catch {
    return null; // no NVIDIA kernel driver (or not Linux)
  }
}

function gpuFacts(p: CudaProbe): EnvironmentFingerprint['gpu'] {
  return {
    available: p.available,
    devices: p.devices.map((d) => ({ name: d.name, computeCapability: d.computeCapability, totalMemoryBytes: d.totalMemoryBytes })),
    driverVersion: p.driverVersion,
    driverRelease: driverRelease(),
    cudaRuntimeVersion: p.runtimeVersion,
    cublasLt: p.cublasLt,
  };
}

async function hashOne(dir: string, file: string): Promise<FileHash> {
  const path = join(dir, file);
  return { file, sizeBytes: statSync(path).size, sha256: await sha256File(path) };
}

/** sha256 of a model directory's weights (*.safetensors + index), tokenizer.json and config files. */
export async function modelFingerprint(dir: string): Promise<ModelFingerprint> {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    throw fileError(e, `cannot read model directory ${dir}`, dir);
  }
  const weightFiles = names.filter((n) => n.endsWith('.safetensors') || n === 'model.safetensors.index.json');
  if (!weightFiles.some((n) => n.endsWith('.safetensors'))) {
    throw new TokenmillError('file_not_found', `${dir}: no *.safetensors weights to fingerprint`, { details: { file: dir } });
  }
  const configs = ['config.json', 'tokenizer_config.json', 'generation_config.json'].filter((n) => names.includes(n));
  const weights: FileHash[] = [];
  for (const n of weightFiles) weights.push(await hashOne(dir, n)); // one at a time: bounded memory and disk queue
  return {
    weights,
    tokenizer: names.includes('tokenizer.json') ? await hashOne(dir, 'tokenizer.json') : null,
    configs: await Promise.all(configs.map((n) => hashOne(dir, n))),
  };
}

export async function environmentFingerprint(opts: FingerprintOptions = {}): Promise<EnvironmentFingerprint> {
  const env = opts.env ?? {};
  const fields: Omit<EnvironmentFingerprint, 'fingerprintId' | 'tokenmillEnv'> = {
    tokenmill: tokenmillInfo(env.TOKENMILL_GIT_COMMIT),
    node: { version: process.version, platform: process.platform, arch: process.arch },
    cpu: cpuFacts(),
    cpuAddon: await cpuAddonFacts(env.TOKENMILL_CPU_ISA ?? ''),
    gpu: gpuFacts(opts.cudaProbe ?? probeCuda()),
    model: opts.modelDir === undefined ? null : await modelFingerprint(opts.modelDir),
  };
  return { fingerprintId: fingerprintIdOf(fields), ...fields, tokenmillEnv: { ...env } };
}

/** How the server runs the model: part of system_fingerprint (the same machine can serve on CPU or GPU). */
export interface ServingSetup {
  readonly backend: string;
  readonly quantize: string | null;
  readonly kvCacheDType: string;
}

/**
 * system_fingerprint (OpenAI's field): fp_ + 12 hex digits of sha256 over the environment
 * fingerprint's id (build, Node, CPU/addon, GPU/driver, model weights/tokenizer/configs) and the
 * serving setup. It changes exactly when results may differ for the same request and seed.
 */
export function systemFingerprintOf(fingerprintId: string, setup: ServingSetup): string {
  return (
    'fp_' +
    createHash('sha256')
      .update(canonicalJson({ fingerprintId, ...setup }))
      .digest('hex')
      .slice(0, 12)
  );
}
