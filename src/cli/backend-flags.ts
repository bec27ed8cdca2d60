// The backend flags `generate`, `serve` and `bench engine` share, defined once so that their names,
// parsers and help agree across subcommands.
import type { Command } from 'commander';
import type { DeviceChoice } from '../runtime/select.js';
import { choiceArg, positiveIntArg } from './options.js';

export const DEVICES: readonly DeviceChoice[] = ['auto', 'cpu', 'cuda', 'reference'];

/** --device, --threads and --quantize: which backend runs and how its weights are stored. */
export function addBackendFlags(cmd: Command): Command {
  return cmd
    .option('--device <device>', `backend: ${DEVICES.join(' | ')}`, choiceArg(DEVICES), 'auto')
    .option('--threads <n>', 'CPU worker threads (default: physical cores)', positiveIntArg)
    .option(
      '--quantize <mode>',
      'weight-only quantization of the linear layers: int8 (per-channel) | q8_0 (Q8_0 blocks)',
      choiceArg(['int8', 'q8_0'] as const),
    );
}

/** --kv-cache-dtype, for the subcommands that size a KV cache (serve, bench engine). */
export function addKvCacheDtypeFlag(cmd: Command): Command {
  const help = 'KV cache dtype: auto (= compute dtype) | f32 | f16 | bf16 (f16/bf16: CPU only, halves the cache)';
  return cmd.option('--kv-cache-dtype <dtype>', help, choiceArg(['auto', 'f32', 'f16', 'bf16'] as const), 'auto');
}
