// CPU decode tok/s, f32 weights vs weight-only int8 (--quantize int8), for seeded random
// stories15M / stories110M shapes: both variants loaded side by side in one process and reps
// alternating between them (load swings on a shared machine hit both), median of N with min/max.
// Usage: node --import tsx bench/cpu/q8-decode.ts [--models stories15M,stories110M] [--threads 1,2]
//        [--reps 5] [--steps 64]. Prints one JSON line per (model, threads).
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from '../../src/engine/generate.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel, type LoadedModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { createCpuBackend } from '../../src/runtime/select.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const models = arg('models', 'stories15M,stories110M').split(',');
const threadList = arg('threads', '1,2').split(',').map(Number);
const reps = Number(arg('reps', '5'));
const steps = Number(arg('steps', '64'));
const PROMPT = [1, 100, 200, 300, 400, 500, 600, 700];

/** Decode tok/s of one greedy request through generate() (the serving Engine, ENGINE_DEFAULTS). */
async function decodeTokPerS(m: LoadedModel): Promise<number> {
  let tokPerS = 0;
  const params = samplingParams({ temperature: 0, maxTokens: steps + 1, ignoreEos: true });
  for await (const ev of generate(m.model, null, PROMPT, { params })) if (ev.stats !== undefined) tokPerS = ev.stats.decodeTokPerS;
  return tokPerS;
}

const stat = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: +s[Math.floor(s.length / 2)]!.toFixed(1), min: +s[0]!.toFixed(1), max: +s[s.length - 1]!.toFixed(1) };
};

for (const name of models) {
  const preset = MODEL_PRESETS[name];
  if (preset === undefined) throw new Error(`unknown preset ${name}`);
  const dir = join(tmpdir(), 'tokenmill-q8-bench', `${name}-f32-seed0`);
  if (!existsSync(join(dir, 'config.json'))) writeRandomModel(dir, preset.config, { seed: 0, tokenizer: false });
  for (const threads of threadList) {
    const be = createCpuBackend({ numThreads: threads });
    const f32 = await loadModel(dir, be);
    const int8 = await loadModel(dir, be, { quantize: 'int8' });
    await decodeTokPerS(f32); // warm-up
    await decodeTokPerS(int8);
    const r: Record<'f32' | 'int8', number[]> = { f32: [], int8: [] };
    for (let i = 0; i < reps; i++) {
      r.f32.push(await decodeTokPerS(f32));
      r.int8.push(await decodeTokPerS(int8));
    }
    const f = stat(r.f32),
      q = stat(r.int8);
    console.log(
      JSON.stringify({
        model: name,
        threads,
        isa: (be as unknown as { isa: string }).isa,
        steps,
        reps,
        f32TokPerS: f,
        int8TokPerS: q,
        speedup: +(q.median / f.median).toFixed(2),
      }),
    );
    f32.model.dispose();
    int8.model.dispose();
    be.dispose();
  }
}
