// `tokenmill bench engine | serve | report`: offline engine throughput/latency on a backend, an
// HTTP load generator for any OpenAI-compatible server, and the HTML report over result files.
// Wiring only: the engine loop is bench-engine.ts, HTTP load is metrics/loadgen, the page is
// metrics/report. Heavy modules load inside the actions.
import type { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { BenchRecord } from '../metrics/bench/bench-record.js';
import type { CpuIsa, DeviceChoice } from '../runtime/select.js';
import { TokenmillError } from '../util/errors.js';
import { machinePrice } from '../metrics/machine-price.js';
import { log } from '../util/logger.js';
import {
  commandLine,
  fingerprintOrMinimal,
  formatRecordLine,
  gitCommitOf,
  gitDirtyOf,
  parseIntList,
  progressBar,
  resolveShapes,
  writeRun,
} from './bench-common.js';
import { defaultNumRequests } from './bench-engine.js';
import { backendOptionsFromEnv, engineOptionsFromEnv } from './env.js';
import { choiceArg, floatArg, positiveIntArg } from './options.js';
import { addBackendFlags, addKvCacheDtypeFlag } from './backend-flags.js';

interface EngineCliOptions {
  model?: string;
  preset?: string;
  presetDtype: 'f32' | 'f16' | 'bf16';
  device: DeviceChoice;
  threads?: number;
  /** Force a CPU kernel ISA (bench/engine/compare-cpu.ts runs avx2 next to the best); default: the best. */
  cpuIsa?: CpuIsa;
  quantize?: 'int8' | 'q8_0';
  kvCacheDtype?: 'auto' | 'f32' | 'f16' | 'bf16';
  cudaDtype: 'bf16' | 'f16' | 'f32';
  shapes?: string;
  in?: number;
  out?: number;
  concurrency: string;
  numRequests?: number;
  reps: number;
  seed: number;
  /** Undefined: the device's assumed price (metrics/machine-price.ts), as serve does. */
  usdPerHour?: number;
  peakGbS?: number;
  output?: string;
}

/** A model directory: --model DIR, or a seeded random model for --preset generated once into the cache. */
async function modelDirFor(o: EngineCliOptions): Promise<{ dir: string; name: string }> {
  if ((o.model === undefined) === (o.preset === undefined))
    throw new TokenmillError('invalid_argument', 'give exactly one of --model DIR and --preset NAME', { param: '--model' });
  if (o.model !== undefined) {
    const { resolveGgufPath } = await import('../model/gguf-model.js');
    if (!existsSync(join(o.model, 'config.json')) && resolveGgufPath(o.model) === null)
      throw new TokenmillError('model_not_found', `--model ${o.model}: no config.json (or .gguf file) there`);
    return { dir: resolve(o.model), name: basename(resolve(o.model)) };
  }
  const [{ MODEL_PRESETS }, { writeRandomModel }, { defaultCacheDir }] = await Promise.all([
    import('../model/model-presets.js'),
    import('../model/random-model.js'),
    import('./hub-download.js'),
  ]);
  const preset = MODEL_PRESETS[o.preset!];
  if (preset === undefined)
    throw new TokenmillError('invalid_argument', `--preset ${o.preset}: one of ${Object.keys(MODEL_PRESETS).join(', ')}`, {
      param: '--preset',
    });
  const dir = join(defaultCacheDir(), 'bench-models', `${o.preset}-${o.presetDtype}-seed0`);
  if (!existsSync(join(dir, 'config.json'))) {
    log.info(`bench: generating ${o.preset} (${o.presetDtype}, seed 0) into ${dir}`);
    writeRandomModel(dir, preset.config, { seed: 0, dtype: o.presetDtype, tokenizer: false });
  }
  return { dir, name: `${o.preset} (random ${o.presetDtype})` };
}

export async function benchEngine(o: EngineCliOptions): Promise<{ records: BenchRecord[]; file: string }> {
  const shapes = resolveShapes(o);
  const concurrency = parseIntList(o.concurrency, '--concurrency');
  const loadStart = loadavg();
  const { dir, name } = await modelDirFor(o);
  const [{ selectBackend, probeCuda }, { loadModel }, { resolveWeightDType }, { weightBytes }, probes, { runEngineBench }] =
    await Promise.all([
      import('../runtime/select.js'),
      import('../model/loader.js'),
      import('../model/weights.js'),
      import('../metrics/planner.js'),
      import('../metrics/bench/device-probes.js'),
      import('./bench-engine.js'),
    ]);
  const fingerprint = await fingerprintOrMinimal(dir);
  const { backend, reason } = selectBackend({
    ...backendOptionsFromEnv(),
    device: o.device,
    ...(o.threads !== undefined ? { numThreads: o.threads } : {}),
    dtype: o.cudaDtype,
    ...(o.cpuIsa !== undefined ? { cpuIsa: o.cpuIsa } : {}),
  });
  try {
    const maxConc = Math.max(...concurrency);
    const loaded = await loadModel(dir, backend, {
      maxLogitsPerStep: Math.max(256, maxConc),
      maxTokensPerStep: Math.max(512, maxConc),
      ...(o.quantize !== undefined ? { quantize: o.quantize } : {}),
      ...(o.kvCacheDtype !== undefined ? { kvCacheDType: o.kvCacheDtype } : {}),
    });
    try {
      const c = loaded.config;
      const deviceKind = backend.name === 'cuda' ? 'cuda' : backend.name === 'cpu' ? 'cpu' : 'reference';
      const dtype = o.quantize ?? resolveWeightDType(c.torchDType, backend.computeDType);
      const planDType = dtype === 'q8_0' ? 'int8' : dtype; // Q8_0's f16 scale per 32 (+6%) is not in the planner
      const isa = (backend as unknown as { isa?: string }).isa;
      const threads = deviceKind === 'cpu' ? (o.threads ?? null) : null;
      let device: string;
      let peak: { gbPerS: number | null; source: string | null } = {
        gbPerS: o.peakGbS ?? null,
        source: o.peakGbS !== undefined ? '--peak-gb-s' : null,
      };
      if (deviceKind === 'cuda') {
        device = probeCuda().devices[0]?.name ?? 'CUDA GPU';
        const spec = probes.acceleratorForDeviceName(device);
        if (peak.gbPerS === null && spec !== null) peak = { gbPerS: spec.bandwidthGbPerS, source: spec.source };
      } else {
        device = `${cpus()[0]?.model ?? 'CPU'} (${threads ?? 'default'} threads${isa ? `, ${isa}` : ''})`;
        if (peak.gbPerS === null)
          peak = { gbPerS: probes.measureHostCopyGbPerS(), source: 'measured single-thread host copy, read+write bytes' };
      }
      const price = machinePrice(
        o.usdPerHour,
        deviceKind === 'cuda' ? { kind: 'gpu', name: device } : { kind: 'cpu', numCores: cpus().length },
      );
      process.stderr.write(
        `[tokenmill] bench engine: price $${price.usdPerHour}/h (` +
          `${price.source === 'flag' ? '--usd-per-hour' : `ASSUMED: ${price.basis}`})\n`,
      );
      process.stderr.write(
        `[tokenmill] bench engine: ${name} on ${reason}; ${dtype} weights; peak ${peak.gbPerS?.toFixed(1) ?? '?'} GB/s (` +
          `${peak.source ?? 'unknown'})\n`,
      );
      const total = shapes.length * concurrency.reduce((a, k) => a + (o.numRequests ?? defaultNumRequests(k)), 0) * o.reps;
      const bar = progressBar('bench engine', total);
      let records: BenchRecord[];
      try {
        records = await runEngineBench(
          {
            model: loaded.model,
            modelName: name,
            dtype,
            deviceKind,
            device,
            numThreads: threads,
            weightBytes: weightBytes(c, planDType),
            peakGbPerS: peak.gbPerS,
            peakSource: peak.source,
            commit: gitCommitOf(fingerprint),
            dirty: gitDirtyOf(fingerprint),
            fingerprint,
            command: commandLine(),
          },
          {
            shapes,
            concurrency,
            reps: o.reps,
            seed: o.seed,
            usdPerHour: price.usdPerHour,
            usdPerHourSource: { source: price.source, basis: price.basis },
            measurePower: deviceKind === 'cuda',
            onRequestDone: () => bar.tick(),
            engine: engineOptionsFromEnv(),
            ...(o.numRequests !== undefined ? { numRequests: o.numRequests } : {}),
          },
        );
      } finally {
        bar.stop();
      }
      const file = writeRun(records, {
        ...(o.output !== undefined ? { out: o.output } : {}),
        kind: 'engine',
        label: `tokenmill-${deviceKind}`,
        command: commandLine(),
        loadStart,
      });
      return { records, file };
    } finally {
      loaded.model.dispose();
    }
  } finally {
    backend.dispose();
  }
}

async function benchReport(files: string[], o: { output: string; title?: string; markdown?: string }): Promise<void> {
  const [{ recordsOf }, { buildReportHtml }, { comparisonMarkdown }] = await Promise.all([
    import('../metrics/bench/bench-record.js'),
    import('../metrics/report/report-html.js'),
    import('../metrics/report/markdown-table.js'),
  ]);
  const records: BenchRecord[] = [];
  for (const f of files) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new TokenmillError('invalid_argument', `${f}: not a readable JSON results file (${(e as Error).message})`);
    }
    const rs = recordsOf(json);
    if (rs.length === 0) log.warn(`bench report: ${f} holds no bench records`);
    records.push(...rs);
  }
  if (records.length === 0) throw new TokenmillError('invalid_argument', 'bench report: no records in the given files');
  writeFileSync(
    o.output,
    buildReportHtml(records, {
      sources: files,
      generatedAt: new Date().toISOString(),
      ...(o.title !== undefined ? { title: o.title } : {}),
    }),
  );
  process.stderr.write(`[tokenmill] wrote ${o.output} (${records.length} records)\n`);
  if (o.markdown !== undefined) {
    writeFileSync(o.markdown, comparisonMarkdown(records));
    process.stderr.write(`[tokenmill] wrote ${o.markdown}\n`);
  }
}

export function register(program: Command): void {
  const bench = program
    .command('bench')
    .description('measure throughput, latency and cost (engine offline, any OpenAI server, HTML report)');
  addKvCacheDtypeFlag(
    addBackendFlags(
      bench
        .command('engine')
        .description('offline throughput and latency through the engine on a backend (synthetic seeded prompts, exact lengths)')
        .option('--model <dir>', 'model directory')
        .option('--preset <name>', 'seeded random model of this shape instead (e.g. stories15M), generated once into the cache')
        .option('--preset-dtype <dtype>', 'f32 | f16 | bf16 for --preset', choiceArg(['f32', 'f16', 'bf16'] as const), 'f32'),
    ),
  )
    .option('--cuda-dtype <dtype>', 'CUDA activation/KV dtype', choiceArg(['bf16', 'f16', 'f32'] as const), 'bf16')
    .option('--shapes <list>', "IN/OUT token counts, comma-separated, or 'all' (128/128,512/256,1000/1000,2048/2048)")
    .option('--in <n>', 'prompt tokens (with --out: one shape)', positiveIntArg)
    .option('--out <n>', 'output tokens', positiveIntArg)
    .option('--concurrency <list>', 'requests in flight, comma-separated', '1')
    .option('--num-requests <n>', 'requests per point (default max(4, 2 x concurrency))', positiveIntArg)
    .option('--reps <n>', 'repeat each point; tok/s reports the median [min..max]', positiveIntArg, 1)
    .option('--seed <n>', 'prompt PRNG seed', positiveIntArg, 1)
    .option('--usd-per-hour <usd>', "machine price for cost figures (default: the device's assumed price, as serve uses)", floatArg)
    .option('--peak-gb-s <n>', 'peak memory bandwidth for % of peak (default: GPU table, or measured host copy on CPU)', floatArg)
    .option('--output <path>', 'results file (.json) or directory (default bench/results)')
    .action(async (o: EngineCliOptions) => {
      const { records, file } = await benchEngine(o);
      for (const r of records) process.stdout.write(`${formatRecordLine(r)}\n`);
      process.stderr.write(`[tokenmill] wrote ${file}\n`);
    });
  bench
    .command('serve')
    .description('load-test any OpenAI-compatible server over HTTP (streaming completions)')
    .requiredOption('--url <url>', 'server base URL (http://host:port or .../v1)')
    .option('--model <name>', 'model name to request (default: the first of GET /v1/models)')
    .option('--api-key-env <VAR>', 'environment variable holding the API key (never on the command line)')
    .option('--concurrency <list>', 'closed-loop concurrency sweep, comma-separated', '1')
    .option('--request-rate <list>', 'Poisson request-rate sweep in req/s (inf = all at once); replaces the concurrency sweep')
    .option('--max-concurrency <n>', 'cap on requests in flight during a rate sweep', positiveIntArg)
    .option('--num-requests <n>', 'requests per point (default max(8, 2 x concurrency); 32 for rates)', positiveIntArg)
    .option('--shapes <list>', "IN/OUT token counts or 'all'", '128/128')
    .option('--in <n>', 'prompt tokens', positiveIntArg)
    .option('--out <n>', 'output tokens', positiveIntArg)
    .option('--prompts-file <jsonl>', 'prompts from JSONL ({"prompt": text | [ids], "max_tokens"?: n}) instead of synthetic ids')
    .option('--vocab-size <n>', 'synthetic prompt ids are drawn from [3, N)', positiveIntArg, 256)
    .option('--no-ignore-eos', 'do not send ignore_eos (output lengths then vary)')
    .option('--slo-ttft-ms <ms>', 'goodput SLO on time to first token', floatArg)
    .option('--slo-itl-ms <ms>', "goodput SLO on each request's mean inter-token latency", floatArg)
    .option('--timeout-s <s>', 'per-request timeout', floatArg, 600)
    .option('--seed <n>', 'PRNG seed (prompts and arrivals)', positiveIntArg, 1)
    .option('--usd-per-hour <usd>', 'price of the server machine (default: what a tokenmill server reports at /version, else 0)', floatArg)
    .option('--label <name>', 'engine name in the records (default: tokenmill when /version says so, else openai-server)')
    .option('--device-name <text>', 'what the server runs on, for the records', 'remote')
    .option('--gpu-power', 'sample local nvidia-smi power.draw (the server runs on this machine)')
    .option('--output <path>', 'results file (.json) or directory (default bench/results)')
    .action(async (o: import('./bench-serve.js').ServeBenchCliOptions) => {
      const { benchServe } = await import('./bench-serve.js');
      const { records, file } = await benchServe(o);
      for (const r of records) process.stdout.write(`${formatRecordLine(r)}\n`);
      process.stderr.write(`[tokenmill] wrote ${file}\n`);
    });
  bench
    .command('report')
    .description('HTML report (inline SVG plots and a table, no network) from result files')
    .argument('<files...>', 'bench result JSON files')
    .option('--out <file>', 'HTML file to write', 'bench-report.html')
    .option('--title <text>', 'page title')
    .option('--markdown <file>', 'also write the tokenmill-vs-peers comparison table (Markdown, as in BENCHMARKS.md)')
    .action((files: string[], o: { out: string; title?: string; markdown?: string }) =>
      benchReport(files, {
        output: o.out,
        ...(o.title !== undefined ? { title: o.title } : {}),
        ...(o.markdown !== undefined ? { markdown: o.markdown } : {}),
      }),
    );
}
