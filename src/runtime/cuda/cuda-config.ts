// Process-wide CUDA settings, set once by the CLI before the first probe or backend (src/cli/program.ts
// maps TOKENMILL_CUBLASLT here): the addon loads libcublasLt once per process, at its first probe or
// context, so a later change could not take effect.

let cublasLtPath = '';

/** cublasLtPath: libcublasLt to load first ('' or absent: the loader path and /usr/local/cuda). */
export function configureCuda(opts: { readonly cublasLtPath?: string }): void {
  cublasLtPath = opts.cublasLtPath ?? '';
}

/** The configured libcublasLt path, '' for the default search. */
export function configuredCublasLtPath(): string {
  return cublasLtPath;
}
