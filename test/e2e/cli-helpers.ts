// Helpers for the CLI end-to-end tests: spawn `node --import tsx src/cli/main.ts ...` (async, so a
// test can run several at once), build seeded fixtures, and pick the device the tests can use.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpuAddonAvailable } from '../../src/runtime/select.js';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const SHARED_MODELS = process.env.TOKENMILL_SHARED_MODELS ?? resolve(REPO_ROOT, '..', 'shared', 'models');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly timeoutMs?: number;
  /** Called with all stdout so far on each chunk; may signal the child. */
  readonly onStdout?: (stdoutSoFar: string, child: import('node:child_process').ChildProcess) => void;
}

export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, TOKENMILL_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      opts.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** The fastest backend these tests may use: the CPU addon once it is built, else the reference. */
export function testDevice(): 'cpu' | 'reference' {
  return cpuAddonAvailable().available ? 'cpu' : 'reference';
}

/** node:test skip value for tests needing ../shared/models files: a reason locally, never in CI. */
export function skipUnlessShared(...rel: string[]): string | false {
  const missing = rel.filter((r) => !existsSync(join(SHARED_MODELS, r)));
  if (missing.length === 0 || process.env.CI === 'true') return false;
  return `needs ${missing.map((m) => join(SHARED_MODELS, m)).join(', ')} (absent)`;
}

/** A stack trace line as Node prints it. */
export const STACK_LINE = /^\s+at .+/m;
