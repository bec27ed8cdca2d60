// `tokenmill serve`: the composition root of the HTTP server. Resolves the model (a directory, a
// hub id downloaded into the cache, or the generated demo model), opens the engine stack, loads API
// keys (env or a 0600 file, never argv), starts the server and installs the drain/fault lifecycle.

import { existsSync } from 'node:fs';
import { cpus, networkInterfaces } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { GpuMonitor } from '../metrics/gpu-monitor.js';
import { ServerMetrics } from '../metrics/server-metrics.js';
import { machinePrice, type PricedDevice } from '../metrics/machine-price.js';
import { METRICS_COMPAT_CHOICES, type MetricsCompat } from '../metrics/vllm-compat.js';
import { probeCuda, trimNativeMemory, type DeviceChoice } from '../runtime/select.js';
import { createServer } from '../server/app.js';
import { ZmqKvEventPublisher } from '../server/kv-events-publisher.js';
import { loadApiKeys } from '../server/auth.js';
import { installLifecycle } from '../server/lifecycle.js';
import { openModelStack } from '../server/model-stack.js';
import { resolveChatTemplate } from '../model/builtin-chat-templates.js';
import { declaredPooling, type PoolingType } from '../model/pooling-config.js';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';
import { addBackendFlags, addKvCacheDtypeFlag } from './backend-flags.js';
import { DEMO_MODEL_ALIASES, DEMO_MODEL_ID, ensureDemoModel } from './demo-model.js';
import { servingMachineInfo } from './doctor.js';
import { defaultCacheDir, downloadHubModel, isHubRepoId } from './hub-download.js';
import { choiceArg, collect, floatArg, nonNegativeArg, portArg, positiveIntArg } from './options.js';
import { assertPortFree } from './port-check.js';
import { apiKeyListFromEnv, backendOptionsFromEnv, engineOptionsFromEnv, tokenmillEnv } from './env.js';
import { packageVersion } from './version.js';
import { withoutUndefined } from '../util/defined.js';

export interface ServeOptions {
  model?: string;
  servedModelName?: string;
  host: string;
  port: number;
  apiKeyFile?: string;
  apiKey?: string;
  usdPerHour?: number;
  device: DeviceChoice;
  threads?: number;
  quantize?: 'int8' | 'q8_0';
  kvCacheDtype?: 'auto' | 'f32' | 'f16' | 'bf16';
  kvCacheMemory?: number;
  kvCacheShare?: number;
  maxNumSeqs?: number;
  maxModelLen?: number;
  maxQueue?: number;
  maxQueueWait?: number;
  schedulingPolicy?: 'fcfs' | 'priority';
  drainTimeout: number;
  idleMemoryRelease: number;
  metricsPublic?: boolean;
  metricsPort?: number;
  metricsCompat?: MetricsCompat;
  kvEventsEndpoint?: string;
  corsOrigin?: string[];
  rateLimit?: { ratePerSecond: number; burst: number };
  maxBodyBytes?: number;
  toolCallParser?: string;
  reasoningParser?: string;
  chatTemplate?: string;
  pooling: 'auto' | PoolingType;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1e3,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1e12,
  tib: 1024 ** 4,
};

/** '512MiB', '2GB', '1e9', '4096' -> bytes. */
export function parseBytes(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new TokenmillError('invalid_argument', `'${raw}' is not a size (e.g. 536870912, 512MiB, 2GB)`);
  const n = Math.floor(Number(m[1]) * unit);
  if (!(n > 0) || !Number.isSafeInteger(n)) throw new TokenmillError('invalid_argument', `'${raw}' is not a positive size`);
  return n;
}

/** 'RPS' or 'RPS:BURST' -> a token-bucket config. */
export function parseRateLimit(raw: string): { ratePerSecond: number; burst: number } {
  const [r, b] = raw.split(':');
  const ratePerSecond = Number(r);
  const burst = b === undefined ? Math.max(1, Math.ceil(ratePerSecond)) : Number(b);
  if (!(ratePerSecond > 0) || !(burst >= 1) || !Number.isInteger(burst))
    throw new TokenmillError('invalid_argument', `--rate-limit '${raw}': expected RPS or RPS:BURST`);
  return { ratePerSecond, burst };
}

/**
 * The KV events topic kv@<pod-ip>:<port>@<model>: routers key replicas by it. The address is POD_IP
 * (Kubernetes' downward API) when set, else --host unless it is a wildcard, else this machine's
 * first non-internal IPv4.
 */
export function kvEventsTopic(host: string, port: number, modelId: string, env: NodeJS.ProcessEnv = process.env): string {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  const ip = env.POD_IP || (wildcard ? firstIpv4() : host);
  return `kv@${ip}:${port}@${modelId}`;
}

function firstIpv4(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function webDir(): string | null {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
  return existsSync(join(dir, 'index.html')) ? dir : null;
}

/** Where the model lives locally, its served id and aliases. */
async function resolveModel(o: ServeOptions): Promise<{ dir: string; id: string; aliases: string[] }> {
  const cacheDir = defaultCacheDir();
  if (o.model === undefined) {
    return { dir: ensureDemoModel(cacheDir), id: o.servedModelName ?? DEMO_MODEL_ID, aliases: DEMO_MODEL_ALIASES };
  }
  if (existsSync(o.model)) return { dir: resolve(o.model), id: o.servedModelName ?? basename(resolve(o.model)), aliases: [] };
  if (isHubRepoId(o.model)) {
    const dir = await downloadHubModel({ repoId: o.model, cacheDir });
    return { dir, id: o.servedModelName ?? o.model, aliases: [] };
  }
  throw new TokenmillError('model_not_found', `--model ${o.model}: no such directory, and not a hub id (org/name)`);
}

/** The device serve will run on, for its assumed price: selectBackend's rule (auto = the GPU when CUDA works). */
function pricedDevice(device: DeviceChoice): PricedDevice {
  if (device === 'cuda' || device === 'auto') {
    const p = probeCuda();
    const d = p.devices[0];
    if (p.available && d !== undefined) return { kind: 'gpu', name: d.name, totalMemoryBytes: d.totalMemoryBytes };
  }
  return { kind: 'cpu', numCores: cpus().length };
}

function shareArg(v: string): number {
  const x = Number(v);
  if (!(x > 0 && x <= 1))
    throw new TokenmillError('invalid_argument', `--kv-cache-share ${v}: expected a fraction in (0, 1]`, { param: 'kv-cache-share' });
  return x;
}

/** --pooling auto: what the model directory declares (sentence-transformers), else last-token. */
export function resolvePooling(opt: 'auto' | PoolingType, dir: string): PoolingType {
  if (opt !== 'auto') return opt;
  const declared = declaredPooling(dir);
  if (declared !== null) log.info(`embeddings: ${declared} pooling, as the model's sentence-transformers config declares`);
  return declared ?? 'last';
}

export async function serve(o: ServeOptions): Promise<void> {
  if (o.apiKey !== undefined) {
    throw new TokenmillError(
      'invalid_argument',
      'API keys are never taken from the command line (other users can read it): set TOKENMILL_API_KEYS or use --api-key-file ' +
        'with a chmod 600 file.',
    );
  }
  const keyList = apiKeyListFromEnv();
  const keys = loadApiKeys(withoutUndefined({ keyList, keyFile: o.apiKeyFile }));
  // Before the model loads (seconds to minutes): a taken port is the user's to fix, not a crash later.
  await assertPortFree(o.host, o.port);
  if (o.metricsPort !== undefined) {
    if (o.metricsPort === o.port && o.port !== 0) {
      throw new TokenmillError('invalid_argument', `--metrics-port ${o.metricsPort} is the API port`, { param: '--metrics-port' });
    }
    await assertPortFree(o.host, o.metricsPort);
  }
  const chatTemplate = o.chatTemplate === undefined ? undefined : resolveChatTemplate(o.chatTemplate);
  const model = await resolveModel(o);
  // Before the weights load: a missing zeromq or a taken events port is the user's to fix at once.
  let topic = kvEventsTopic(o.host, o.port, model.id);
  const kvEvents = o.kvEventsEndpoint === undefined ? null : await ZmqKvEventPublisher.open({ endpoint: o.kvEventsEndpoint, topic });
  const price = machinePrice(o.usdPerHour, o.usdPerHour === undefined ? pricedDevice(o.device) : { kind: 'cpu', numCores: cpus().length });
  // NVML through the CPU addon (dlopen; absent library = no GPU gauges), read off the step loop.
  const metrics = new ServerMetrics({
    modelName: model.id,
    usdPerHour: price.usdPerHour,
    priceSource: price.source,
    priceBasis: price.basis,
    gpu: new GpuMonitor(),
    compat: o.metricsCompat ?? null,
  });
  const stack = await openModelStack({
    dir: model.dir,
    modelId: model.id,
    device: o.device,
    usdPerHour: price.usdPerHour,
    observer: metrics,
    ...engineOptionsFromEnv(),
    backendOptions: backendOptionsFromEnv(),
    env: tokenmillEnv(),
    ...withoutUndefined({
      numThreads: o.threads,
      quantize: o.quantize,
      kvCacheDType: o.kvCacheDtype,
      kvCacheBytes: o.kvCacheMemory,
      kvCacheShare: o.kvCacheShare,
      maxNumSeqs: o.maxNumSeqs,
      maxModelLen: o.maxModelLen,
      maxWaitingRequests: o.maxQueue,
      maxQueueWaitSeconds: o.maxQueueWait,
      schedulingPolicy: o.schedulingPolicy,
      chatTemplate: chatTemplate?.template,
      kvEvents: kvEvents ?? undefined,
    }),
  });
  const pooling = resolvePooling(o.pooling, model.dir);
  const server = await createServer({
    engine: stack.engine,
    frontend: stack.frontend,
    metrics,
    apiKeys: keys,
    systemFingerprint: stack.systemFingerprint,
    embeddingPooling: pooling,
    idleMemoryReleaseMs: o.idleMemoryRelease * 1000,
    trimNativeMemory: () => void trimNativeMemory(),
    metricsPublic: o.metricsPublic === true,
    ...(o.metricsPort !== undefined ? { metricsPort: o.metricsPort } : {}),
    corsOrigins: (o.corsOrigin ?? [])
      .flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
    modelAliases: model.aliases,
    version: packageVersion(),
    webDir: webDir(),
    info: servingMachineInfo(o.device, stack.backendReason, model.dir),
    ...(o.rateLimit !== undefined ? { rateLimit: o.rateLimit } : {}),
    ...(o.maxBodyBytes !== undefined ? { bodyLimitBytes: o.maxBodyBytes } : {}),
    ...(o.toolCallParser !== undefined ? { toolCallParser: o.toolCallParser } : {}),
    ...(o.reasoningParser !== undefined ? { reasoningParser: o.reasoningParser } : {}),
  });
  installLifecycle(server, { drainTimeoutMs: o.drainTimeout * 1000 });
  const compatNote = o.metricsCompat ? `, ${o.metricsCompat} names too` : '';
  const { url, port, metricsUrl } = await server.listen({ host: o.host, port: o.port }).catch((e: NodeJS.ErrnoException) => {
    // Taken between the early check and now (a race with another process): the same clear error.
    throw e?.code === 'EADDRINUSE'
      ? new TokenmillError('port_in_use', `port ${o.port} is in use on ${o.host}: stop the other process or pass another --port`, {
          param: '--port',
          cause: e,
        })
      : e;
  });
  if (kvEvents !== null && o.port === 0) {
    topic = kvEventsTopic(o.host, port, model.id);
    kvEvents.setTopic(topic);
  }
  if (price.usdPerHour === 0) log.warn('--usd-per-hour is 0: every cost is reported as $0');
  const auth = keys.enabled
    ? `on (${keys.size} key${keys.size === 1 ? '' : 's'})`
    : 'off (no TOKENMILL_API_KEYS / --api-key-file: any key is accepted)';
  const priceNote =
    price.source === 'flag' ? 'from --usd-per-hour' : `ASSUMED (${price.basis}); pass --usd-per-hour for your machine's price`;
  const templateNote =
    chatTemplate !== undefined
      ? `${chatTemplate.source} (--chat-template)`
      : stack.frontend.hasChatTemplate
        ? "the model's own"
        : 'none (chat requests get a 400; pass --chat-template FILE|NAME)';
  process.stdout.write(
    `tokenmill ${packageVersion()} serving '${model.id}' (max ${stack.engine.maxModelLen} tokens) on ${stack.backendReason}\n` +
      `  price: $${price.usdPerHour}/h, ${priceNote}\n` +
      `  auth: ${auth}\n` +
      `  chat template: ${templateNote}\n` +
      `  system_fingerprint: ${stack.systemFingerprint} (environment fingerprint ${stack.fingerprintId}, as doctor --model ` +
      'prints; backend, quantization, KV dtype)\n' +
      `  listening on ${url} (OpenAI base URL ${url}/v1)\n` +
      (metricsUrl !== null ? `  metrics: ${metricsUrl} (no auth${compatNote}; restrict it with a NetworkPolicy)\n` : '') +
      (kvEvents !== null ? `  KV events: ZeroMQ PUB on ${kvEvents.endpoint}, topic ${topic}\n` : ''),
  );
}

export function register(program: Command): void {
  addKvCacheDtypeFlag(
    addBackendFlags(
      program
        .command('serve')
        .description('serve a model over an OpenAI-compatible HTTP API (no --model: the generated demo model)')
        .option('--model <dir|org/name>', 'model directory, or a hub id downloaded into TOKENMILL_CACHE (~/.cache/tokenmill)')
        .option('--served-model-name <name>', 'model id reported by /v1/models')
        .option('--host <host>', 'address to bind', '127.0.0.1')
        .option('--port <port>', 'port, 0-65535 (0 picks a free one)', portArg, 8000)
        .option('--api-key-file <path>', 'file with one API key per line (must be chmod 600); also TOKENMILL_API_KEYS=k1,k2')
        .addOption(new Option('--api-key <key>', 'refused: keys never go on the command line').hideHelp())
        .option(
          '--usd-per-hour <usd>',
          "machine price for every cost figure (default: the device's assumed price: GPU table by name, or per CPU core)",
          floatArg,
        ),
    ),
  )
    .option('--kv-cache-memory <size>', 'KV cache budget: bytes or e.g. 512MiB, 2GB (default: --kv-cache-share of free memory)', parseBytes)
    .option(
      '--kv-cache-share <fraction>',
      'share of the memory free after loading for the KV cache when --kv-cache-memory is unset (default 0.25 host, 0.9 GPU)',
      shareArg,
    )
    .option('--max-num-seqs <n>', 'most sequences per engine step', positiveIntArg)
    .option('--max-model-len <n>', 'longest prompt + completion', positiveIntArg)
    .option('--max-queue <n>', 'waiting requests before 503 + Retry-After (default max(64, 2 x --max-num-seqs))', positiveIntArg)
    .option('--max-queue-wait <seconds>', 'estimated queue wait before 503 (default 20; 0 or --max-queue alone: none)', nonNegativeArg)
    .option(
      '--scheduling-policy <policy>',
      'fcfs | priority (requests may send "priority": lower runs first)',
      choiceArg(['fcfs', 'priority'] as const),
    )
    .option(
      '--pooling <mode>',
      "/v1/embeddings pooling: auto (the model's sentence-transformers config, else last) | last | mean",
      choiceArg(['auto', 'last', 'mean'] as const),
      'auto',
    )
    .option('--drain-timeout <seconds>', 'on SIGTERM, how long in-flight requests may finish', floatArg, 30)
    .option(
      '--idle-memory-release <seconds>',
      'after load stops and the server idles this long, one full GC gives back the heap the load grew (0: never)',
      nonNegativeArg,
      10,
    )
    .option('--metrics-public', 'serve /metrics without an API key')
    .option('--metrics-port <port>', 'also serve GET /metrics (only that, no API key) on this port, for routers and Prometheus', portArg)
    .option('--kv-events-endpoint <endpoint>', 'publish KV cache events (vLLM format) on ZeroMQ: tcp://*:5557 binds, tcp://host:N connects')
    .option(
      '--metrics-compat <engine>',
      "also export the metrics under vLLM's names (vllm:num_requests_waiting, ...): routers' default engine config, OpenCost, Grafana",
      choiceArg(METRICS_COMPAT_CHOICES),
    )
    .option('--cors-origin <origin>', 'allow this browser origin (repeatable or comma-separated); default: no CORS', collect)
    .option('--rate-limit <rps[:burst]>', 'per-API-key token bucket (429 + Retry-After)', parseRateLimit)
    .option('--max-body-bytes <size>', 'request body limit (default 2MiB)', parseBytes)
    .option(
      '--tool-call-parser <name>',
      'how tool calls are read from the output: auto (from the chat template) | none | hermes | llama3_json | mistral',
      choiceArg(['auto', 'none', 'hermes', 'llama3_json', 'mistral'] as const),
      'auto',
    )
    .option(
      '--reasoning-parser <name>',
      'how reasoning is split from the answer: auto (from the chat template) | none | qwen3 (<think>...</think>)',
      choiceArg(['auto', 'none', 'qwen3'] as const),
      'auto',
    )
    .option(
      '--chat-template <file|name>',
      "chat template replacing the model's: a Jinja file, an inline template, or chatml | llama2 | llama3 | plain",
    )
    .action(async (opts: ServeOptions) => {
      await serve(opts);
      // Run until the lifecycle exits the process (signal drain or engine fault).
      await new Promise<never>(() => {});
    });
}
