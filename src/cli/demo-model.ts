// The embedded demo model for `tokenmill serve` with no --model: a seeded tiny Llama with random
// weights and the synthetic tokenizer, generated on first start into the cache (no network) and
// reused afterwards. Its name says what it is: its output is gibberish by construction.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { MODEL_PRESETS } from '../model/model-presets.js';
import { writeRandomModel } from '../model/random-model.js';
import { log } from '../util/logger.js';

// The id says it is a demo with random weights (its text is noise), without spaces that break clients.
export const DEMO_MODEL_ID = 'tokenmill-demo-tiny-random';
export const DEMO_MODEL_ALIASES = ['tokenmill-demo-tiny'];
/** Bump when the demo's shape or generator changes so old caches are regenerated. */
const DEMO_VERSION = 1;
const DEMO_SEED = 20240601;

function demoConfig(): Record<string, unknown> {
  return { ...MODEL_PRESETS['tiny-llama']!.config, max_position_embeddings: 1024 };
}

/** The demo model directory under cacheDir, generated when missing or stale. */
export function ensureDemoModel(cacheDir: string): string {
  const dir = join(cacheDir, 'demo', 'tokenmill-demo-tiny');
  const marker = join(dir, 'tokenmill-demo.json');
  if (existsSync(marker)) {
    try {
      if ((JSON.parse(readFileSync(marker, 'utf8')) as { version?: number }).version === DEMO_VERSION) return dir;
    } catch {
      // regenerate below
    }
  }
  log.info(`generating the demo model (${DEMO_MODEL_ID}) into ${dir}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  removeStaleTemporaries(dir);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeRandomModel(tmp, demoConfig(), { seed: DEMO_SEED });
  writeFileSync(join(tmp, 'tokenmill-demo.json'), JSON.stringify({ version: DEMO_VERSION, seed: DEMO_SEED, id: DEMO_MODEL_ID }) + '\n');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, '..'), { recursive: true });
  renameSync(tmp, dir);
  return dir;
}

/** A start killed mid-write leaves `<dir>.tmp-<pid>`: remove those whose process is gone. */
function removeStaleTemporaries(dir: string): void {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.tmp-`;
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const pid = Number(e.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) continue;
    rmSync(join(parent, e), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
