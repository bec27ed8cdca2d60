// Test helper: a tiny random Qwen3-shaped model (1 layer) with the real Qwen3 tokenizer and chat
// template, opened with the real Engine and served on 127.0.0.1:0, plus the tools the tests use.
// serveTinyModel is the serving half, shared with the other tool formats (tool-format-models.ts).

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { makeTinyModel, type TinyModel } from '../../src/model/random-model.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';
import { sharedPath } from '../tokenizer/shared-models.js';

const device = cpuAddonAvailable().available ? 'cpu' : 'reference';

export const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city'],
      additionalProperties: false,
    },
  },
};
export const TIME_TOOL = {
  type: 'function' as const,
  function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } },
};

export interface Served {
  model: TinyModel;
  stack: ModelStack;
  server: TokenmillServer;
  url: string;
  client: OpenAI;
}

export async function serveTinyQwen3(opts: { template?: (t: string) => string; seed?: number } = {}): Promise<Served> {
  const model = makeTinyModel(sharedPath('qwen3-tokenizer'), {
    preset: 'tiny-qwen3',
    seed: opts.seed ?? 5,
    patch: { num_hidden_layers: 1, max_position_embeddings: 2048 },
  });
  if (opts.template) {
    const p = join(model.dir, 'tokenizer_config.json');
    const cfg = JSON.parse(readFileSync(p, 'utf8')) as { chat_template: string };
    cfg.chat_template = opts.template(cfg.chat_template);
    writeFileSync(p, JSON.stringify(cfg));
  }
  return serveTinyModel(model);
}

/** Serves a tiny model as 'tiny' (CPU backend when its addon is built, else the reference), 16 MiB of KV. */
export async function serveTinyModel(model: TinyModel, opts: { toolCallParser?: string } = {}): Promise<Served> {
  const metrics = new ServerMetrics({ modelName: 'tiny', usdPerHour: 1 });
  const stack = await openModelStack({
    dir: model.dir,
    modelId: 'tiny',
    device,
    kvCacheBytes: 16 << 20,
    usdPerHour: 1,
    observer: metrics,
    maxModelLen: 2048,
  });
  const server = await createServer({
    engine: stack.engine,
    frontend: stack.frontend,
    metrics,
    ...(opts.toolCallParser !== undefined ? { toolCallParser: opts.toolCallParser } : {}),
  });
  const url = (await server.listen({ port: 0 })).url;
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
  return { model, stack, server, url, client };
}

export async function closeServed(s: Served | undefined): Promise<void> {
  if (!s) return;
  await s.server.close();
  await s.stack.frontend.close();
  s.model.remove();
}
