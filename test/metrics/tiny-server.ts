// Test helper: a real TokenmillServer over the real AsyncEngine on the seeded tiny random Llama
// (test/engine/tiny-model.ts: CPU backend when the addon is built), with its real tokenizer and chat
// template. Each call opens a fresh engine + metrics over the file's cached model; close() frees them.

import { AsyncEngine, type AsyncEngineOptions } from '../../src/engine/async-engine.js';
import type { GpuMonitor } from '../../src/metrics/gpu-monitor.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import type { MetricsCompat } from '../../src/metrics/vllm-compat.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { createServer, type ServerOptions, type TokenmillServer } from '../../src/server/app.js';
import { TokenizerFrontend } from '../../src/server/model-frontend.js';
import { tinyModel } from '../engine/tiny-model.js';

export interface TinyServer {
  server: TokenmillServer;
  engine: AsyncEngine;
  metrics: ServerMetrics;
  frontend: TokenizerFrontend;
  close(): Promise<void>;
}

export interface TinyServerOptions {
  usdPerHour?: number;
  engine?: Partial<Omit<AsyncEngineOptions, 'model'>>;
  server?: Partial<ServerOptions>;
  gpu?: GpuMonitor;
  /** Clock of the cost ledger (ms); default Date.now. */
  ledgerNow?: () => number;
  /** --metrics-compat. */
  compat?: MetricsCompat;
}

export async function startTinyServer(o: TinyServerOptions = {}): Promise<TinyServer> {
  const { model, dir } = await tinyModel();
  const usdPerHour = o.usdPerHour ?? 3.6;
  const metrics = new ServerMetrics({
    modelName: 'tiny',
    usdPerHour,
    ...(o.gpu ? { gpu: o.gpu } : {}),
    ...(o.ledgerNow ? { now: o.ledgerNow } : {}),
    compat: o.compat ?? null,
  });
  const tokenizer = loadTokenizer(dir);
  const frontend = new TokenizerFrontend(tokenizer, { eosTokenIds: model.config.eosTokenIds, vocabSize: model.config.vocabSize });
  const engine = new AsyncEngine({
    modelId: 'tiny',
    model,
    numBlocks: 256,
    blockSize: 16,
    usdPerHour,
    observer: metrics,
    eosTokenIds: model.config.eosTokenIds,
    detokenizer: frontend.detokenizerFactory(),
    ...o.engine,
  });
  const server = await createServer({ engine, frontend, metrics, ...o.server });
  return {
    server,
    engine,
    metrics,
    frontend,
    close: async () => {
      await server.close();
      await frontend.close();
    },
  };
}
