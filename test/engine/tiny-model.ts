// Test helper: a seeded tiny random Llama (writeRandomModel) loaded on the CPU backend when the
// addon is available, the reference backend otherwise. One model per test file (cached); the file
// calls after(disposeTinyModel) at its top level.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import type { CausalLM } from '../../src/model/types.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import type { Backend } from '../../src/runtime/backend.js';

let cached: Promise<{ model: CausalLM; backend: Backend; dir: string }> | null = null;
const cleanups: (() => void)[] = [];

export async function disposeTinyModel(): Promise<void> {
  if (cached !== null) await cached.catch(() => undefined);
  for (const f of cleanups.splice(0).reverse()) f();
  cached = null;
}

export function tinyModel(): Promise<{ model: CausalLM; backend: Backend; dir: string }> {
  cached ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-engine-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 11 });
    const useCpu = process.env.TOKENMILL_TEST_BACKEND !== 'reference' && cpuAddonAvailable().available;
    const backend = useCpu ? createCpuBackend({ numThreads: 2 }) : createReferenceBackend();
    const { model } = await loadModel(dir, backend, { maxTokensPerStep: 256, maxLogitsPerStep: 64 });
    cleanups.push(() => {
      model.dispose();
      backend.dispose();
    });
    return { model, backend, dir };
  })();
  return cached;
}
