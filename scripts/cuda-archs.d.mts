// Types for scripts/cuda-archs.mjs (plain JS: it runs during `npm ci`, before any TypeScript tooling).
export declare const FALLBACK_ARCH: string;
export declare function normalizeArch(raw: string): string | null;
export declare function archsFromNvidiaSmi(stdout: string | undefined): string[];
export interface NvidiaSmiResult {
  readonly status: number | null;
  readonly stdout?: string;
  readonly error?: string;
}
export declare function selectCudaArchs(input?: { env?: Record<string, string | undefined>; nvidiaSmi?: NvidiaSmiResult | null }): {
  archs: string[];
  ptx: boolean;
  source: 'env' | 'gpu' | 'fallback';
  reason: string;
};
export declare function gencodeArgs(archs: readonly string[], ptx: boolean): string[];
export declare function compileParallelism(o: { cores: number; tasks: number; targets: number; jobsEnv?: string }): {
  jobs: number;
  nvccThreads: number;
};
