// TokenmillServer: one fastify instance over one EngineClient + ModelFrontend. Owns the server
// state (serving -> draining, or -> dead on an engine fault), in-flight accounting for drains,
// error mapping for every route, and the metrics wiring. Process signals live in lifecycle.ts.

import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { EngineClient } from '../engine/engine-api.js';
import type { PoolingType } from '../engine/pooling.js';
import { ServerMetrics } from '../metrics/server-metrics.js';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';
import { ApiKeyStore } from './auth.js';
import type { ModelFrontend } from './frontend.js';
import { clientErrorHandler, frameworkErrorHandler, sendError, toHttpError } from './http-errors.js';
import { installHooks, isMonitoringPath, pathOf } from './hooks.js';
import { IdleMemoryRelease } from './idle-memory.js';
import { startMetricsListener, type MetricsListener } from './metrics-listener.js';
import { KeyRateLimiter, type RateLimitOptions } from './rate-limit.js';
import { registerAdminRoutes } from './routes-admin.js';
import { registerEmbeddingRoutes } from './routes-embeddings.js';
import { registerResponsesRoutes } from './routes-responses.js';
import { registerOpenAiRoutes, type OpenAiRouteOptions } from './routes-openai.js';
import { registerRenderRoutes } from './routes-render.js';
import { registerWebRoutes } from './routes-web.js';
import { DEFAULT_LIMITS, type ServerLimits } from './schemas.js';
import { resolveOutputParsers } from './tools/chat-parsing.js';

export interface ServerOptions {
  readonly engine: EngineClient;
  readonly frontend: ModelFrontend;
  /** Shared with the engine (it is the engine's EngineObserver); created when absent. */
  readonly metrics?: ServerMetrics;
  /** Machine price for a metrics instance created here (default 0). */
  readonly usdPerHour?: number;
  readonly apiKeys?: ApiKeyStore;
  readonly metricsPublic?: boolean;
  /** Also serve GET /metrics, without auth, on this port of the listen host (0 picks one; absent: no such listener). */
  readonly metricsPort?: number;
  readonly corsOrigins?: readonly string[];
  readonly bodyLimitBytes?: number;
  readonly rateLimit?: RateLimitOptions;
  readonly limits?: Partial<ServerLimits>;
  /** SSE keep-alive comment interval while no token arrives (default 5 s). */
  readonly pingIntervalMs?: number;
  readonly version?: string;
  /** Other names accepted for the served model (e.g. the demo's short id). */
  readonly modelAliases?: readonly string[];
  readonly webDir?: string | null;
  /** The model and machine report /metrics/info serves (the CLI passes doctor's). */
  readonly info?: () => unknown;
  /** Dashboard series sampling period (default 1000 ms). */
  readonly seriesIntervalMs?: number;
  /** --tool-call-parser: auto (from the chat template, default), none, hermes, llama3_json, mistral. */
  readonly toolCallParser?: string;
  /** --reasoning-parser: auto (default), none, qwen3. */
  readonly reasoningParser?: string;
  /**
   * system_fingerprint on every chat/completions response and chunk: fp_ + a short hash of the
   * environment fingerprint (ModelStack.systemFingerprint). Without it the field is null.
   */
  readonly systemFingerprint?: string | null;
  /** How /v1/embeddings pools the final hidden states (default 'last', right for decoder embedders). */
  readonly embeddingPooling?: PoolingType;
  /** Full GC (and trimNative) once idle this long after load (ms; absent or 0: never). See idle-memory.ts. */
  readonly idleMemoryReleaseMs?: number;
  /** Hands native allocator memory back to the OS at that release (the CLI passes the CPU addon's). */
  readonly trimNativeMemory?: () => void;
}

export type ServerState = 'serving' | 'draining' | 'dead';

const DEFAULT_BODY_LIMIT_BYTES = 2 * 1024 * 1024;
const REQUEST_ID_RE = /^[\w.:@/+=-]{1,128}$/;

export class TokenmillServer {
  readonly app: FastifyInstance;
  readonly metrics: ServerMetrics;
  private stateValue: ServerState = 'serving';
  private fatal: TokenmillError | null = null;
  private numInFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private fatalListeners: ((e: TokenmillError) => void)[] = [];
  private metricsListener: MetricsListener | null = null;
  private readonly idleMemory: IdleMemoryRelease | null;

  constructor(private readonly opts: ServerOptions) {
    const engine = opts.engine;
    this.metrics = opts.metrics ?? new ServerMetrics({ modelName: engine.modelId, usdPerHour: opts.usdPerHour ?? 0 });
    this.metrics.bindEngineGauges(() => engine.stats());
    const app = Fastify({
      logger: false,
      bodyLimit: opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
      genReqId: (req) => {
        const h = req.headers['x-request-id'];
        return typeof h === 'string' && REQUEST_ID_RE.test(h) ? h : randomUUID();
      },
      forceCloseConnections: 'idle',
      // Every 4xx is the OpenAI envelope, also for malformed URLs and requests Node cannot parse.
      frameworkErrors: frameworkErrorHandler,
      clientErrorHandler,
    });
    this.app = app;
    app.removeContentTypeParser(['text/plain']);
    installHooks(app, {
      keys: opts.apiKeys ?? new ApiKeyStore([]),
      metricsPublic: opts.metricsPublic ?? false,
      corsOrigins: opts.corsOrigins ?? [],
      isDraining: () => this.stateValue === 'draining',
    });
    const idleMs = opts.idleMemoryReleaseMs ?? 0;
    this.idleMemory =
      idleMs > 0
        ? new IdleMemoryRelease({
            idleMs,
            busy: () => {
              const st = engine.stats();
              return st.numRunning + st.numWaiting > 0;
            },
            registry: this.metrics.registry,
            ...(opts.trimNativeMemory ? { trimNative: opts.trimNativeMemory } : {}),
          })
        : null;
    if (this.idleMemory) {
      const idle = this.idleMemory;
      app.addHook('onRequest', async (req) => {
        if (!isMonitoringPath(pathOf(req))) idle.touch();
      });
    }
    app.addHook('onResponse', async (req, reply) => {
      log.debug(`${req.method} ${pathOf(req)} ${reply.statusCode} ${reply.elapsedTime.toFixed(0)}ms account=${req.account} id=${req.id}`);
    });
    app.setErrorHandler((err, req, reply) => {
      const te = toHttpError(err);
      if (te.httpStatus >= 500 && te.code !== 'server_overloaded' && te.code !== 'server_draining') {
        log.error(`request ${req.id} failed: ${te.code}: ${te.message}`);
      }
      return sendError(reply, te);
    });
    app.setNotFoundHandler((req, reply) =>
      sendError(reply, new TokenmillError('not_found', `Unknown route: ${req.method} ${req.url.split('?')[0]}`)),
    );

    const ctx = {
      engine,
      frontend: opts.frontend,
      metrics: this.metrics,
      pingIntervalMs: opts.pingIntervalMs ?? 5000,
      systemFingerprint: opts.systemFingerprint ?? null,
      isDraining: () => this.stateValue === 'draining',
      fatal: () => this.fatal,
    };
    const routeOpts: OpenAiRouteOptions = {
      ctx,
      limits: { ...DEFAULT_LIMITS, ...opts.limits },
      rateLimiter: opts.rateLimit ? new KeyRateLimiter(opts.rateLimit) : null,
      modelAliases: opts.modelAliases ?? [],
      parsers: resolveOutputParsers(
        {
          ...(opts.toolCallParser !== undefined ? { toolCallParser: opts.toolCallParser } : {}),
          ...(opts.reasoningParser !== undefined ? { reasoningParser: opts.reasoningParser } : {}),
        },
        opts.frontend.chatTemplate,
      ),
      begin: () => this.begin(),
    };
    registerOpenAiRoutes(app, routeOpts);
    registerRenderRoutes(app, routeOpts);
    registerEmbeddingRoutes(app, routeOpts, opts.embeddingPooling ?? 'last');
    registerResponsesRoutes(app, routeOpts);
    registerAdminRoutes(app, {
      engine,
      frontend: opts.frontend,
      metrics: this.metrics,
      version: opts.version ?? '0.0.0',
      modelCreated: Math.floor(Date.now() / 1000),
      modelAliases: opts.modelAliases ?? [],
      systemFingerprint: opts.systemFingerprint ?? null,
      state: () => this.stateValue,
      fatal: () => this.fatal,
    });
    registerWebRoutes(app, { engine, metrics: this.metrics, webDir: opts.webDir ?? null, ...(opts.info ? { info: opts.info } : {}) });
    this.metrics.startSampling(opts.seriesIntervalMs ?? 1000);
    engine.onFatal((e) => this.markDead(e)); // the one dead-engine signal: no polling
  }

  get state(): ServerState {
    return this.stateValue;
  }

  get inFlight(): number {
    return this.numInFlight;
  }

  get fatalError(): TokenmillError | null {
    return this.fatal;
  }

  /** Listen; port 0 picks a free port. Resolves to the base URL (http://host:port). */
  async listen(opts: { host?: string; port?: number } = {}): Promise<{ url: string; port: number; metricsUrl: string | null }> {
    const host = opts.host ?? '127.0.0.1';
    if (this.opts.metricsPort !== undefined && this.metricsListener === null) {
      this.metricsListener = await startMetricsListener(this.metrics, { host, port: this.opts.metricsPort });
    }
    try {
      await this.app.listen({ host, port: opts.port ?? 0 });
    } catch (e) {
      await this.metricsListener?.close();
      this.metricsListener = null;
      throw e;
    }
    const addr = this.app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 0);
    const shownHost = host.includes(':') ? `[${host}]` : host;
    return { url: `http://${shownHost}:${port}`, port, metricsUrl: this.metricsListener?.url ?? null };
  }

  onFatal(cb: (e: TokenmillError) => void): void {
    this.fatalListeners.push(cb);
    if (this.fatal) cb(this.fatal);
  }

  /** Engine fault (EngineClient.onFatal): /health turns 503, new requests fail, listeners (the CLI: exit non-zero) run. */
  private markDead(e: TokenmillError): void {
    if (this.stateValue === 'dead') return;
    this.stateValue = 'dead';
    this.fatal = e.fatal ? e : new TokenmillError('engine_dead', e.message, { cause: e });
    log.error(`engine fault: ${e.code}: ${e.message}`);
    for (const cb of this.fatalListeners) cb(this.fatal);
  }

  /**
   * Stop accepting new work (503 server_draining, /ready 503), let in-flight requests finish for
   * up to timeoutMs (then the engine aborts the rest), wait for their responses to flush.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.stateValue === 'serving') this.stateValue = 'draining';
    const deadline = Date.now() + timeoutMs;
    await Promise.race([this.opts.engine.drain(timeoutMs), sleep(timeoutMs + 100)]);
    // Responses finish writing shortly after the engine ends their streams.
    await Promise.race([this.whenIdle(), sleep(Math.max(0, deadline - Date.now()) + 1000)]);
  }

  /** Close the HTTP server and shut the engine down. */
  async close(): Promise<void> {
    this.metrics.stopSampling();
    this.idleMemory?.stop();
    await this.metricsListener?.close();
    this.metricsListener = null;
    await this.app.close();
    await this.opts.engine.shutdown();
  }

  private begin(): () => void {
    this.numInFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.numInFlight--;
      if (this.numInFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
  }

  /** Resolves once no request is in flight. */
  whenIdle(): Promise<void> {
    if (this.numInFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export async function createServer(opts: ServerOptions): Promise<TokenmillServer> {
  const s = new TokenmillServer(opts);
  await s.app.ready();
  return s;
}
