// How the CLI reports failures: one line `error [code]: message` on stderr, exit 2 for a user
// mistake (a 4xx code) and 1 for anything else; the stack only with --debug. Commander's own parse
// errors (unknown option, missing argument, bad number) become invalid_argument.
import { CommanderError } from 'commander';
import { toTokenmillError, TokenmillError } from '../util/errors.js';

export const EXIT_OK = 0;
export const EXIT_INTERNAL = 1;
export const EXIT_USER = 2;

/** Commander codes that are not failures (help, version). */
const COMMANDER_SUCCESS = new Set(['commander.helpDisplayed', 'commander.version', 'commander.executeSubCommandAsync']);

/** Whether --debug appears anywhere on the command line (known before parsing finishes). */
export function debugRequested(argv: readonly string[] = process.argv): boolean {
  return argv.includes('--debug');
}

/** Map anything thrown to a TokenmillError, or null for commander's help/version exits. */
export function classify(e: unknown): TokenmillError | null {
  if (e instanceof CommanderError) {
    if (COMMANDER_SUCCESS.has(e.code) || e.exitCode === 0) return null;
    const message = e.message.replace(/^error:\s*/, '');
    return new TokenmillError('invalid_argument', message, { cause: e, details: { commanderCode: e.code } });
  }
  return toTokenmillError(e);
}

export function exitCodeFor(e: TokenmillError): number {
  return e.httpStatus < 500 ? EXIT_USER : EXIT_INTERNAL;
}

/** The stderr text for an error: one line, plus stacks (and causes) with debug. */
export function formatError(e: TokenmillError, debug: boolean): string {
  const firstLine = e.message.split('\n')[0] ?? '';
  let out = `error [${e.code}]: ${firstLine}\n`;
  if (debug) {
    // The stack, then each cause's (an internal_error wraps the original exception).
    const seen = new Set<unknown>();
    let cur: unknown = e;
    let prefix = '';
    while (cur instanceof Error && !seen.has(cur)) {
      seen.add(cur);
      out += `${prefix}${cur.stack ?? String(cur)}\n`;
      prefix = 'caused by: ';
      cur = cur.cause;
    }
  }
  return out;
}

/** Print e (if it is a failure) and return the process exit code. */
export function reportError(e: unknown, debug = debugRequested()): number {
  // Help printed: `help <cmd>` succeeds (exitCode 0); a missing subcommand is a usage error.
  if (e instanceof CommanderError && e.code === 'commander.help') return e.exitCode === 0 ? EXIT_OK : EXIT_USER;
  const err = classify(e);
  if (err === null) return EXIT_OK;
  process.stderr.write(formatError(err, debug));
  return exitCodeFor(err);
}
