// The `tokenmill` command tree: global options, the subcommand table and error handling around a
// parse. Subcommand modules load lazily (only the one invoked, or all for help), so `--version`,
// `doctor` and bad-argument errors never pay for the model stack, the server or native addons.
import { Command } from 'commander';
import { setLogLevel } from '../util/logger.js';
import { addonPathsFromEnv, cudaConfigFromEnv, logLevelFromEnv, rendererEnvFromEnv } from './env.js';
import { reportError } from './errors.js';
import { packageVersion } from './version.js';

/** A subcommand module: adds its command (options, action) to the program. */
export interface CliCommandModule {
  register(program: Command): void;
}

/** Subcommand name -> module. Registering a subcommand is one line here. */
export const COMMANDS: Readonly<Record<string, () => Promise<CliCommandModule>>> = {
  generate: () => import('./generate.js'),
  convert: () => import('./convert.js'),
  'random-model': () => import('./random-model.js'),
  doctor: () => import('./doctor.js'),
  serve: () => import('./serve.js'),
  plan: () => import('./plan.js'),
  bench: () => import('./bench.js'),
};

export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('tokenmill')
    .description('LLM inference engine and OpenAI-compatible server')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .showSuggestionAfterError(true);
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  const names = first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : Object.keys(COMMANDS);
  for (const name of names) (await COMMANDS[name]!()).register(program);
  return program;
}

/** Parse and run argv; returns the exit code (errors already printed). */
export async function runCli(argv: readonly string[] = process.argv): Promise<number> {
  const level = logLevelFromEnv();
  if (level !== undefined) setLogLevel(level);
  try {
    const { configureCuda } = await import('../runtime/select.js'); // before any subcommand probes CUDA
    const { configureNativeAddons } = await import('../runtime/native.js'); // before any subcommand loads an addon
    configureCuda(cudaConfigFromEnv());
    configureNativeAddons(addonPathsFromEnv());
    const { configureChatTemplateRenderer } = await import('../model/chat-template.js');
    configureChatTemplateRenderer({ env: rendererEnvFromEnv() });
    const program = await buildProgram(argv);
    await program.parseAsync([...argv]);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    return reportError(e);
  }
}
