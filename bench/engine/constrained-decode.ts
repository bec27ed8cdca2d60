// Decode tok/s with and without a json_schema constraint, in one run: the stories15M shape (seeded
// random f32 weights) with a real tokenizer (Llama 2's 32000-token SentencePiece vocabulary from
// ../shared by default, or --tokenizer qwen3|llama3), in-process through AsyncEngine on the CPU
// backend. Both modes use the same seeded temperature sampling (so both take the host sampler; the
// difference is the grammar: masks, compaction, matcher), the same prompts and max_tokens.
// Reps alternate modes (free, json, free, json, ...) so load swings on a shared machine hit both;
// each point reports median/min/max decode tok/s over reps (decode steps only: wall time of steps
// without prefill tokens, tokens they produced) and the constraint's cost at the median.
//   node --import tsx bench/engine/constrained-decode.ts [--concurrency 1,32] [--reps 5]
//     [--max-tokens 128] [--threads 1] [--tokenizer llama2|qwen3|llama3] [--output bench/results]
// Nothing is written unless --output is given.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import { samplingParams, type Constraint } from '../../src/engine/sampling-params.js';
import type { EngineStepEvent } from '../../src/metrics/engine-observer.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { createCpuBackend } from '../../src/runtime/select.js';
import { gitCommitOf, fingerprintOrMinimal, parseIntList } from '../../src/cli/bench-common.js';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,32' },
    reps: { type: 'string', default: '5' },
    'max-tokens': { type: 'string', default: '128' },
    threads: { type: 'string', default: '1' },
    tokenizer: { type: 'string', default: 'llama2' },
    output: { type: 'string' },
  },
});
const concurrency = parseIntList(values.concurrency!, '--concurrency');
const reps = Number(values.reps);
const maxTokens = Number(values['max-tokens']);
const threads = Number(values.threads);
const TOKENIZER_DIRS: Record<string, string> = { llama2: 'llama2-tokenizer', qwen3: 'qwen3-tokenizer', llama3: 'llama3-tokenizer' };
const tokDir = TOKENIZER_DIRS[values.tokenizer!];
if (tokDir === undefined) throw new Error(`--tokenizer: one of ${Object.keys(TOKENIZER_DIRS).join(', ')}`);
const shared = resolve(process.env.TOKENMILL_SHARED ?? '../shared', 'models', tokDir);

// A schema whose documents are long (an array of objects with strings, numbers, enums, booleans),
// so generation runs to max_tokens inside the grammar rather than ending early.
const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'qty', 'kind', 'ok'],
        properties: {
          name: { type: 'string' },
          qty: { type: 'integer', minimum: 0 },
          kind: { enum: ['a', 'b', 'c'] },
          ok: { type: 'boolean' },
          note: { type: 'string' },
        },
      },
    },
  },
};
const CONSTRAINT: Constraint = { type: 'json_schema', schema: SCHEMA, strict: true };

const dir = resolve('bench/out/constrained', `stories15M-${values.tokenizer}`);
if (!existsSync(join(dir, 'config.json'))) {
  mkdirSync(dir, { recursive: true });
  const { vocab_size: _v, ...shape } = MODEL_PRESETS.stories15M!.config;
  writeRandomModel(dir, shape, { seed: 0, dtype: 'f32', tokenizerDir: shared });
}
const loadStart = loadavg();
const backend = createCpuBackend({ numThreads: threads });
const { model, generationConfig } = await loadModel(dir, backend, { maxTokensPerStep: 2048, maxLogitsPerStep: 64 });
const tokenizer = loadTokenizer(dir);
const eosTokenIds = generationConfig.eosTokenIds.length > 0 ? generationConfig.eosTokenIds : model.config.eosTokenIds;
console.log(
  `constrained-decode: stories15M shape, ${values.tokenizer} vocabulary (${model.config.vocabSize}), ${threads} thread(s), ` +
    `max_tokens ${maxTokens}, load ${loadStart.map((x) => x.toFixed(1)).join(' ')}`,
);

interface Rep {
  tokPerS: number;
  decodeTokens: number;
  decodeWallS: number;
  finishedEarly: number;
  stepMs: number;
  maskMsPerStep: number;
  readWaitMsPerStep: number;
}

async function oneRep(conc: number, constrained: boolean, seed: number): Promise<Rep> {
  const steps: EngineStepEvent[] = [];
  const eng = new AsyncEngine({
    model,
    modelId: 'bench',
    tokenizer,
    eosTokenIds,
    numBlocks: Math.max(Math.ceil(model.config.maxPositionEmbeddings / 16), conc * Math.ceil((maxTokens + 64) / 16)) + 8,
    blockSize: 16,
    maxNumSeqs: Math.max(conc, 1),
    maxNumBatchedTokens: 2048,
    observer: { onStep: (e) => steps.push(e) },
  });
  // Compile (cached after the first rep) and warm the path before timing.
  if (constrained) await eng.engine.prepare(samplingParams({ constraint: CONSTRAINT }));
  const prompt = await tokenizer.encode('Here is the inventory as JSON:');
  let finishedEarly = 0;
  await Promise.all(
    Array.from({ length: conc }, async (_, i) => {
      const params = samplingParams({
        temperature: 0.8,
        seed: seed * 1000 + i,
        maxTokens,
        ignoreEos: !constrained,
        constraint: constrained ? CONSTRAINT : null,
      });
      let n = 0;
      for await (const o of eng.generate({ requestId: `r${i}`, promptTokenIds: [...prompt, i % 50], params })) n += o.newTokenIds.length;
      if (n < maxTokens) finishedEarly++;
    }),
  );
  const g = eng.engine.runner.grammarStats;
  await eng.shutdown();
  const decode = steps.filter((s) => s.numPrefillTokens === 0);
  const decodeWallS = decode.reduce((a, s) => a + s.wallSeconds, 0);
  const decodeTokens = decode.reduce((a, s) => a + s.numGeneratedTokens, 0);
  const perStep = (x: number) => (g.numSteps > 0 ? x / g.numSteps : 0);
  return {
    tokPerS: decodeTokens / decodeWallS,
    decodeTokens,
    decodeWallS,
    finishedEarly,
    stepMs: (decodeWallS * 1000) / Math.max(1, decode.length),
    maskMsPerStep: perStep(g.maskMs),
    readWaitMsPerStep: perStep(g.readWaitMs),
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const points: unknown[] = [];
for (const conc of concurrency) {
  await oneRep(conc, false, 0); // warm-up (not recorded): first-touch of pages, JIT
  await oneRep(conc, true, 0);
  const free: Rep[] = [];
  const json: Rep[] = [];
  for (let r = 1; r <= reps; r++) {
    free.push(await oneRep(conc, false, r));
    json.push(await oneRep(conc, true, r));
  }
  const stat = (rs: Rep[]) => ({
    median: median(rs.map((r) => r.tokPerS)),
    min: Math.min(...rs.map((r) => r.tokPerS)),
    max: Math.max(...rs.map((r) => r.tokPerS)),
  });
  const f = stat(free);
  const j = stat(json);
  const costPct = (1 - j.median / f.median) * 100;
  console.log(
    `  ${String(conc).padStart(3)} streams: free ${f.median.toFixed(1)} tok/s [${f.min.toFixed(1)}-${f.max.toFixed(1)}]  ` +
      `json_schema ${j.median.toFixed(1)} tok/s [${j.min.toFixed(1)}-${j.max.toFixed(1)}]  cost ${costPct.toFixed(1)}%` +
      `\n        json steps: ${median(json.map((r) => r.stepMs)).toFixed(2)} ms, masks ` +
      `${median(json.map((r) => r.maskMsPerStep)).toFixed(2)} ms/step on the JS thread while the forward pass runs, then ` +
      `${median(json.map((r) => r.readWaitMsPerStep)).toFixed(2)} ms/step still waiting for logits (free steps ` +
      `${median(free.map((r) => r.stepMs)).toFixed(2)} ms)` +
      (json.some((r) => r.finishedEarly > 0)
        ? `  (${json.reduce((a, r) => a + r.finishedEarly, 0)} constrained requests completed their document before max_tokens)`
        : ''),
  );
  points.push({ concurrency: conc, free: { ...f, reps: free }, jsonSchema: { ...j, reps: json }, costPctAtMedian: costPct });
}
model.dispose();
backend.dispose();

if (values.output !== undefined) {
  const fp = await fingerprintOrMinimal(dir);
  const date = new Date();
  const commit = gitCommitOf(fp);
  const file = join(resolve(values.output), `constrained-decode-${date.toISOString().replace(/[:.]/g, '-')}-${commit.slice(0, 8)}.json`);
  mkdirSync(resolve(values.output), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        kind: 'constrained-decode',
        date: date.toISOString(),
        command: process.argv.slice(1).join(' '),
        commit,
        model: 'stories15M shape (random f32)',
        tokenizer: values.tokenizer,
        vocabSize: model.config.vocabSize,
        threads,
        maxTokens,
        schema: SCHEMA,
        loadAvg: { start: loadStart, end: loadavg() },
        fingerprint: fp,
        points,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${file}`);
}
