// Which CUDA architectures the addon is built for, and how the compile is spread over the cores.
// Pure functions (no process, no filesystem) so test/unit/cuda-archs.test.ts can drive them with
// fake nvidia-smi output and environments; scripts/build-cuda.mjs supplies the real inputs.
//
// Order of precedence:
//   1. TOKENMILL_CUDA_ARCHS="80,86,89,90" (or "8.0,9.0", "sm_90"): exactly that list, with PTX for
//      the highest embedded too (images built without a GPU, e.g. the Dockerfile).
//   2. The GPUs present: `nvidia-smi --query-gpu=compute_cap --format=csv,noheader`, deduplicated;
//      SASS only (it runs on exactly these GPUs, quickest to build).
//   3. No GPU or no driver: one architecture, FALLBACK_ARCH (SASS only). That proves the sources
//      compile (what CI needs) in a fraction of the time of a multi-arch build.

/** The one architecture for machines with nvcc but no GPU: sm_80 (A100; bf16 and cp.async, which the kernels use). */
export const FALLBACK_ARCH = '80';

/** "8.6" | "86" | "sm_86" | "compute_86" -> "86"; null for anything else ("[N/A]", ""). */
export function normalizeArch(raw) {
  const s = String(raw)
    .trim()
    .toLowerCase()
    .replace(/^(sm_|compute_)/, '');
  const dotted = /^(\d{1,2})\.(\d)$/.exec(s);
  if (dotted) return `${Number(dotted[1])}${dotted[2]}`;
  if (/^\d{2,3}[af]?$/.test(s)) return s;
  return null;
}

const archNum = (a) => Number.parseInt(a, 10);
const uniqueSorted = (xs) => [...new Set(xs)].sort((a, b) => archNum(a) - archNum(b) || a.localeCompare(b));

/** Compute capabilities from nvidia-smi's csv,noheader output (one line per GPU), deduplicated and sorted. */
export function archsFromNvidiaSmi(stdout) {
  return uniqueSorted(
    String(stdout ?? '')
      .split(/\r?\n/)
      .map(normalizeArch)
      .filter((a) => a !== null),
  );
}

/**
 * The build's architectures and whether to embed PTX, with a sentence saying why.
 * @param {{
 *   env?: Record<string, string | undefined>,
 *   nvidiaSmi?: { status: number | null, stdout?: string, error?: string } | null,
 * }} input
 * @returns {{ archs: string[], ptx: boolean, source: 'env' | 'gpu' | 'fallback', reason: string }}
 */
export function selectCudaArchs({ env = {}, nvidiaSmi = null } = {}) {
  const requested = env.TOKENMILL_CUDA_ARCHS?.trim();
  if (requested) {
    const parts = requested.split(/[\s,;]+/).filter(Boolean);
    const bad = parts.filter((p) => normalizeArch(p) === null);
    if (bad.length > 0)
      throw new Error(`TOKENMILL_CUDA_ARCHS=${requested}: not an architecture: ${bad.join(', ')} (expected e.g. 80,86,89,90)`);
    const archs = uniqueSorted(parts.map(normalizeArch));
    return { archs, ptx: true, source: 'env', reason: `TOKENMILL_CUDA_ARCHS=${requested}` };
  }
  if (nvidiaSmi && nvidiaSmi.status === 0) {
    const archs = archsFromNvidiaSmi(nvidiaSmi.stdout);
    if (archs.length > 0)
      return {
        archs,
        ptx: false,
        source: 'gpu',
        reason: `the GPUs present (nvidia-smi compute_cap: ${archs.map((a) => `sm_${a}`).join(', ')})`,
      };
  }
  const why = !nvidiaSmi
    ? 'nvidia-smi not found'
    : nvidiaSmi.status !== 0
      ? `nvidia-smi failed${nvidiaSmi.error ? ` (${nvidiaSmi.error.trim().split('\n')[0]})` : ''}`
      : 'nvidia-smi listed no GPU';
  return {
    archs: [FALLBACK_ARCH],
    ptx: false,
    source: 'fallback',
    reason: `${why}: one architecture (sm_${FALLBACK_ARCH}) to prove the sources compile; set TOKENMILL_CUDA_ARCHS for others`,
  };
}

/** nvcc -gencode arguments: SASS per arch, plus PTX for the highest when asked. */
export function gencodeArgs(archs, ptx) {
  const args = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
  if (ptx && archs.length > 0) {
    const top = archs[archs.length - 1];
    args.push('-gencode', `arch=compute_${top},code=compute_${top}`);
  }
  return args;
}

/**
 * Parallelism: `jobs` compiler processes at once (default: the cores), and nvcc's own --threads
 * (one thread per target within a file) only where cores would otherwise idle, i.e. when there are
 * fewer files than cores. Total threads stay about the core count.
 * @param {{ cores: number, tasks: number, targets: number, jobsEnv?: string }} o
 * @returns {{ jobs: number, nvccThreads: number }}
 */
export function compileParallelism({ cores, tasks, targets, jobsEnv }) {
  const c = Math.max(1, Math.floor(cores));
  const fromEnv = jobsEnv !== undefined && jobsEnv !== '' ? Number(jobsEnv) : NaN;
  const jobs = Number.isInteger(fromEnv) && fromEnv >= 1 ? fromEnv : c;
  const running = Math.max(1, Math.min(jobs, tasks));
  const nvccThreads = Math.max(1, Math.min(targets, Math.floor(c / running)));
  return { jobs, nvccThreads };
}
