// `tokenmill doctor [--json] [--model DIR]`: what this machine offers tokenmill: version, Node, CPU
// model and ISA flags, CPU addon status, the CUDA probe, which backend `--device auto` picks and why,
// and the environment fingerprint (metrics/fingerprint.ts) every bench record carries; with --model,
// the fingerprint includes sha256 of the model's weights and tokenizer.
import type { Command } from 'commander';
import { cpus, totalmem } from 'node:os';
import { environmentFingerprint, ISA_FLAGS, parseCpuinfo, readCpuinfo, type EnvironmentFingerprint } from '../metrics/fingerprint.js';
import { cpuAddonAvailable, probeCuda, selectBackend, type CudaProbe } from '../runtime/select.js';
import { toTokenmillError } from '../util/errors.js';
import { backendOptionsFromEnv, tokenmillEnv } from './env.js';
import { packageVersion } from './version.js';

export { ISA_FLAGS, parseCpuinfo };

export interface DoctorReport {
  readonly version: string;
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  readonly cpu: { model: string; numLogicalCores: number; totalMemoryBytes: number; flags: Record<string, boolean> | null };
  readonly cpuAddon: { available: boolean; reason: string };
  readonly cuda: CudaProbe;
  readonly auto: { backend: string | null; reason: string };
  /** Present in `doctor` output (--json and text); absent from doctorReport() alone. */
  readonly fingerprint?: EnvironmentFingerprint;
}

function cpuInfo(): DoctorReport['cpu'] {
  const parsed = readCpuinfo();
  return {
    model: parsed?.model ?? cpus()[0]?.model ?? 'unknown',
    numLogicalCores: cpus().length,
    totalMemoryBytes: totalmem(),
    flags: parsed?.flags ?? null,
  };
}

/** What `--device auto` does here: really select (and release) a backend, so the answer is honest. */
function autoChoice(): DoctorReport['auto'] {
  try {
    const sel = selectBackend({ ...backendOptionsFromEnv(), device: 'auto' });
    const name = sel.backend.name;
    sel.backend.dispose();
    return { backend: name, reason: sel.reason };
  } catch (e) {
    const err = toTokenmillError(e);
    return { backend: null, reason: `${err.code}: ${err.message} (use --device reference for the slow plain-TypeScript backend)` };
  }
}

/**
 * The report. A running server passes what it already knows (the backend it chose; no CUDA probe
 * when it serves on the CPU on purpose) so the dashboard's copy costs no second backend or context.
 */
export function doctorReport(known: { auto?: DoctorReport['auto']; cuda?: CudaProbe } = {}): DoctorReport {
  return {
    version: packageVersion(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpu: cpuInfo(),
    cpuAddon: cpuAddonAvailable(),
    cuda: known.cuda ?? probeCuda(),
    auto: known.auto ?? autoChoice(),
  };
}

/**
 * The model and machine a running server shows on its dashboard (/metrics/info): doctor's report,
 * built once on first use, with the backend the server chose; serving on the CPU (or reference) by
 * choice skips the CUDA probe (it would create a GPU context).
 */
export function servingMachineInfo(device: string, backendReason: string, modelDir: string): () => unknown {
  let cached: unknown = null;
  return () => {
    cached ??= {
      modelDir,
      backend: backendReason,
      doctor: doctorReport({
        auto: { backend: backendReason.split(/[\s:(]/)[0] ?? null, reason: backendReason },
        ...(device === 'cpu' || device === 'reference'
          ? {
              cuda: {
                available: false,
                reason: `not probed: serving with --device ${device}`,
                devices: [],
                driverVersion: null,
                runtimeVersion: null,
                cublasLt: false,
              },
            }
          : {}),
      }),
    };
    return cached;
  };
}

export function formatDoctor(r: DoctorReport): string {
  const yes = (b: boolean): string => (b ? 'yes' : 'no');
  const flags = r.cpu.flags === null ? 'unknown' : ISA_FLAGS.filter((f) => r.cpu.flags![f]).join(' ') || 'none of interest';
  const lines = [
    `tokenmill ${r.version}`,
    `node        ${r.node} (${r.platform}/${r.arch})`,
    `cpu         ${r.cpu.model}, ${r.cpu.numLogicalCores} logical cores, ${(r.cpu.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM`,
    `isa         ${flags}`,
    `cpu addon   ${yes(r.cpuAddon.available)}${r.cpuAddon.available ? '' : ` (${r.cpuAddon.reason})`}`,
    `cuda        ${yes(r.cuda.available)}${r.cuda.available ? '' : ` (${r.cuda.reason})`}`,
  ];
  for (const [i, d] of r.cuda.devices.entries()) {
    lines.push(
      `  gpu ${i}     ${d.name}, sm ${d.computeCapability}, ${(d.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB (` +
        `${(d.freeMemoryBytes / 2 ** 30).toFixed(1)} free), bf16 ${yes(d.bf16)}`,
    );
  }
  if (r.cuda.driverVersion !== null || r.cuda.runtimeVersion !== null) {
    lines.push(
      `  versions  driver ${r.cuda.driverVersion ?? '?'}, runtime ${r.cuda.runtimeVersion ?? '?'}, cuBLASLt ${yes(r.cuda.cublasLt)}`,
    );
  }
  lines.push(`auto        ${r.auto.backend ?? 'none'}: ${r.auto.reason}`);
  const fp = r.fingerprint;
  if (fp !== undefined) {
    const dirty = fp.tokenmill.gitDirty === true ? ' (uncommitted changes)' : '';
    lines.push(`commit      ${fp.tokenmill.gitCommit}${dirty}`);
    if (fp.gpu.driverRelease !== null) lines.push(`driver      NVIDIA ${fp.gpu.driverRelease}`);
    lines.push(
      `kernels     cpu ${fp.cpuAddon.kernelIsa ?? 'unavailable'}` +
        `${fp.cpuAddon.binarySha256 !== null ? ` (addon sha256 ${fp.cpuAddon.binarySha256.slice(0, 12)})` : ''}`,
    );
    if (fp.model !== null) {
      for (const f of [...fp.model.weights, ...(fp.model.tokenizer !== null ? [fp.model.tokenizer] : [])])
        lines.push(`  sha256    ${f.sha256}  ${f.file}`);
    }
    lines.push(`fingerprint ${fp.fingerprintId}`);
  }
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('report the version, CPU features, native addons and the backend --device auto picks')
    .option('--json', 'print the report as JSON')
    .option('--model <dir>', "add sha256 of this model directory's weights and tokenizer to the fingerprint")
    .option('--debug', 'print stack traces on errors')
    .action(async (opts: { json?: boolean; model?: string }) => {
      const base = doctorReport();
      const fingerprint = await environmentFingerprint({ modelDir: opts.model, cudaProbe: base.cuda, env: tokenmillEnv() });
      const report: DoctorReport = { ...base, fingerprint };
      process.stdout.write(opts.json === true ? JSON.stringify(report, null, 2) + '\n' : formatDoctor(report));
    });
}
