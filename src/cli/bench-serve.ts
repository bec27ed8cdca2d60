// `tokenmill bench serve`: drive any OpenAI-compatible server (tokenmill, vLLM, llama-server, ...)
// with the load generator in metrics/loadgen, one point per concurrency or request rate, and turn
// each point into a BenchRecord (percentiles, goodput, errors by class, cost via cost.ts).
import { loadavg } from 'node:os';
import { BENCH_RECORD_SCHEMA, costFields, joulesPerToken, type BenchRecord } from '../metrics/bench/bench-record.js';
import { PowerSampler } from '../metrics/bench/device-probes.js';
import { runLoad, type LoadPrompt } from '../metrics/loadgen/load-generator.js';
import { summarizeLoad } from '../metrics/loadgen/load-summary.js';
import { cyclePrompts, loadPromptsFile, syntheticLoadPrompts } from '../metrics/loadgen/prompt-source.js';
import { TokenmillError } from '../util/errors.js';
import {
  commandLine,
  fingerprintOrMinimal,
  gitCommitOf,
  gitDirtyOf,
  parseFloatList,
  parseIntList,
  progressBar,
  resolveShapes,
  writeRun,
} from './bench-common.js';

export interface ServeBenchCliOptions {
  url: string;
  model?: string;
  apiKeyEnv?: string;
  concurrency: string;
  requestRate?: string;
  maxConcurrency?: number;
  numRequests?: number;
  shapes?: string;
  in?: number;
  out?: number;
  promptsFile?: string;
  vocabSize: number;
  ignoreEos: boolean;
  sloTtftMs?: number;
  sloItlMs?: number;
  timeoutS: number;
  seed: number;
  usdPerHour?: number;
  label?: string;
  deviceName: string;
  gpuPower?: boolean;
  output?: string;
  /** Tests inject a fetch. */
  fetchImpl?: typeof fetch;
}

function rootOf(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** A GET's outcome: the JSON body, an HTTP status the server answered with, or no answer at all (why). */
type Probe = { kind: 'ok'; json: unknown } | { kind: 'status'; status: number } | { kind: 'unreachable'; detail: string };

async function probe(f: typeof fetch, url: string, headers: Record<string, string>): Promise<Probe> {
  let res: Response;
  try {
    res = await f(url, { headers, signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (err?.name === 'TimeoutError') return { kind: 'unreachable', detail: 'no answer within 10 s' };
    const code = err?.cause?.code;
    return {
      kind: 'unreachable',
      detail: code === 'ECONNREFUSED' ? 'connection refused' : String(code ?? err?.cause?.message ?? err?.message ?? e),
    };
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    return { kind: 'status', status: res.status };
  }
  try {
    return { kind: 'ok', json: await res.json() };
  } catch {
    return { kind: 'status', status: res.status };
  }
}

/** The error for a probe the bench cannot go on from: the server is down, or refused the key. Null otherwise. */
function fatalProbe(p: Probe, url: string, apiKeyEnv: string | undefined): TokenmillError | null {
  if (p.kind === 'unreachable') {
    return new TokenmillError('server_unreachable', `bench serve: cannot reach ${url} (${p.detail}); is the server running at --url?`, {
      param: '--url',
    });
  }
  if (p.kind === 'status' && (p.status === 401 || p.status === 403)) {
    const key = apiKeyEnv === undefined ? 'no API key was sent: pass --api-key-env VAR' : `the key in $${apiKeyEnv} was refused`;
    return new TokenmillError('invalid_api_key', `bench serve: ${url} answered ${p.status}: ${key}`, { param: '--api-key-env' });
  }
  return null;
}

/** Server facts: the model to request, tokenmill's price and version when it is tokenmill. */
export async function probeServer(
  o: ServeBenchCliOptions,
  apiKey: string | undefined,
): Promise<{ model: string; tokenmillVersion: string | null; usdPerHour: number | null }> {
  const f = o.fetchImpl ?? fetch;
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const root = rootOf(o.url);
  // /version is optional (other servers may lack it), but no answer or a refused key ends the bench here.
  const versionProbe = await probe(f, `${root}/version`, headers);
  const versionFatal = fatalProbe(versionProbe, `${root}/version`, o.apiKeyEnv);
  if (versionFatal !== null) throw versionFatal;
  const version = (versionProbe.kind === 'ok' ? versionProbe.json : null) as {
    version?: string;
    usd_per_hour?: number;
    usdPerHour?: number;
  } | null;
  let model = o.model;
  if (model === undefined) {
    const modelsUrl = `${root}/v1/models`;
    const p = await probe(f, modelsUrl, headers);
    const fatal = fatalProbe(p, modelsUrl, o.apiKeyEnv);
    if (fatal !== null) throw fatal;
    if (p.kind === 'status')
      throw new TokenmillError('invalid_argument', `bench serve: ${modelsUrl} answered HTTP ${p.status}; pass --model NAME`, {
        param: '--model',
      });
    model = p.kind === 'ok' ? (p.json as { data?: { id?: string }[] } | null)?.data?.[0]?.id : undefined;
    if (typeof model !== 'string')
      throw new TokenmillError('invalid_argument', `bench serve: ${modelsUrl} listed no model; pass --model NAME`, { param: '--model' });
  }
  const price = version?.usd_per_hour ?? version?.usdPerHour;
  return {
    model,
    tokenmillVersion: typeof version?.version === 'string' ? version.version : null,
    usdPerHour: typeof price === 'number' ? price : null,
  };
}

export async function benchServe(o: ServeBenchCliOptions): Promise<{ records: BenchRecord[]; file: string }> {
  let apiKey: string | undefined;
  if (o.apiKeyEnv !== undefined) {
    apiKey = process.env[o.apiKeyEnv];
    if (!apiKey)
      throw new TokenmillError('invalid_argument', `--api-key-env ${o.apiKeyEnv}: that variable is not set`, { param: '--api-key-env' });
  }
  const shapes = resolveShapes(o);
  const rates = o.requestRate !== undefined ? parseFloatList(o.requestRate, '--request-rate') : null;
  const concs = parseIntList(o.concurrency, '--concurrency');
  const loadStart = loadavg();
  const server = await probeServer(o, apiKey);
  const usdPerHour = o.usdPerHour ?? server.usdPerHour ?? 0;
  const engine = o.label ?? (server.tokenmillVersion !== null ? 'tokenmill' : 'openai-server');
  const fingerprint = await fingerprintOrMinimal(undefined);
  const fileList: LoadPrompt[] | null = o.promptsFile !== undefined ? loadPromptsFile(o.promptsFile, o.out ?? 128) : null;
  const points =
    rates !== null
      ? rates.map((rate) => ({ rate, conc: o.maxConcurrency ?? Infinity }))
      : concs.map((conc) => ({ rate: null as number | null, conc }));
  const records: BenchRecord[] = [];
  for (const shape of fileList !== null ? [{ inLen: 0, outLen: o.out ?? 128 }] : shapes) {
    for (const p of points) {
      const n = o.numRequests ?? (p.rate !== null ? 32 : Math.max(8, 2 * p.conc));
      const prompts =
        fileList !== null ? cyclePrompts(fileList, n) : syntheticLoadPrompts(n, shape.inLen, shape.outLen, o.vocabSize, o.seed);
      const bar = progressBar(`bench serve ${shape.inLen}/${shape.outLen} ${p.rate !== null ? `rate ${p.rate}` : `c=${p.conc}`}`, n);
      const power = o.gpuPower === true ? new PowerSampler().start() : null;
      const run = await runLoad({
        baseUrl: o.url,
        model: server.model,
        prompts,
        concurrency: p.conc,
        requestRate: p.rate,
        seed: o.seed,
        timeoutMs: o.timeoutS * 1000,
        ignoreEos: o.ignoreEos,
        onRequestDone: () => bar.tick(),
        ...(apiKey !== undefined ? { apiKey } : {}),
        ...(o.fetchImpl ? { fetchImpl: o.fetchImpl } : {}),
      }).finally(() => bar.stop());
      const powerW = power?.stop() ?? null;
      const s = summarizeLoad(run, { ttftMs: o.sloTtftMs ?? null, itlMs: o.sloItlMs ?? null });
      const notes = [
        'ITL = gaps between streamed text chunks (a chunk usually carries one token)',
        `tpot p50 ${s.tpotMs.p50?.toFixed(2) ?? '-'} ms (per-request mean inter-token latency)`,
      ];
      if (fileList !== null) notes.push(`prompts from ${o.promptsFile}; inLen 0 = varies`);
      records.push({
        schema: BENCH_RECORD_SCHEMA,
        kind: 'serve',
        engine,
        engineVersion: server.tokenmillVersion,
        date: new Date().toISOString(),
        commit: gitCommitOf(fingerprint),
        dirty: gitDirtyOf(fingerprint),
        deviceKind: 'remote',
        device: o.deviceName,
        numThreads: null,
        model: server.model,
        dtype: 'unknown',
        inLen: shape.inLen,
        outLen: shape.outLen,
        concurrency: Number.isFinite(p.conc) ? p.conc : n,
        requestRate: p.rate,
        numRequests: s.numRequests,
        numOk: s.numOk,
        wallS: s.wallS,
        promptTokens: s.promptTokens,
        generatedTokens: s.generatedTokens,
        tokPerS: s.tokPerS,
        tokPerSSpread: null,
        ttftMs: s.ttftMs,
        itlMs: s.itlMs,
        e2eMs: s.e2eMs,
        goodput: s.goodput,
        errors: s.errors,
        bytesPerDecodeStep: null,
        gbPerS: null,
        peakGbPerS: null,
        peakSource: null,
        pctPeak: null,
        usdPerHour,
        ...costFields(usdPerHour, s.wallS, s.generatedTokens),
        avgPowerW: powerW,
        joulesPerTok: joulesPerToken(powerW, s.wallS, s.generatedTokens),
        fingerprint,
        command: commandLine(),
        notes,
      });
    }
  }
  const file = writeRun(records, {
    ...(o.output !== undefined ? { out: o.output } : {}),
    kind: 'serve',
    label: engine,
    command: commandLine(),
    loadStart,
  });
  return { records, file };
}
