// The non-generation routes: /v1/models, /v1/models/:id, /tokenize, /detokenize, /health, /ready,
// /version and /metrics (the dashboard and its JSON live in routes-web.ts).

import type { FastifyInstance } from 'fastify';
import type { EngineClient } from '../engine/engine-api.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import { TokenmillError } from '../util/errors.js';
import type { ModelFrontend } from './frontend.js';
import { envelope } from './http-errors.js';
import { checkTokenIds } from '../engine/sampling-validate.js';
import { flattenMessages } from './prompt.js';
import { checkModel } from './routes-openai.js';
import { chatSchema, DEFAULT_LIMITS, detokenizeSchema, parseBody, tokenizeSchema } from './schemas.js';

export interface AdminRouteOptions {
  readonly engine: EngineClient;
  readonly frontend: ModelFrontend;
  readonly metrics: ServerMetrics;
  readonly version: string;
  readonly modelCreated: number;
  readonly modelAliases: readonly string[];
  readonly systemFingerprint: string | null;
  state(): 'serving' | 'draining' | 'dead';
  fatal(): Error | null;
}

export function registerAdminRoutes(app: FastifyInstance, o: AdminRouteOptions): void {
  const model = () => ({
    id: o.engine.modelId,
    object: 'model',
    created: o.modelCreated,
    owned_by: 'tokenmill',
    max_model_len: o.engine.maxModelLen,
  });

  app.get('/v1/models', async () => ({ object: 'list', data: [model()] }));
  app.get('/v1/models/*', async (req) => {
    const id = decodeURIComponent((req.params as { '*': string })['*']);
    if (id !== o.engine.modelId && !o.modelAliases.includes(id))
      throw new TokenmillError('model_not_found', `The model '${id}' does not exist on this server; it serves '${o.engine.modelId}'.`, {
        param: 'model',
      });
    return model();
  });

  app.post('/tokenize', async (req) => {
    const body = parseBody(tokenizeSchema, req.body);
    checkModel(body.model, o.engine.modelId, o.modelAliases);
    let tokens: number[];
    if ('prompt' in body) {
      tokens = await o.frontend.encode(body.prompt, { addSpecialTokens: body.add_special_tokens ?? true });
    } else {
      const chat = parseBody(chatSchema(DEFAULT_LIMITS), { messages: body.messages });
      const text = await o.frontend.renderChat(flattenMessages(chat.messages), { addGenerationPrompt: body.add_generation_prompt ?? true });
      tokens = await o.frontend.encode(text, { addSpecialTokens: false });
    }
    return { tokens, count: tokens.length, max_model_len: o.engine.maxModelLen };
  });
  app.post('/detokenize', async (req) => {
    const body = parseBody(detokenizeSchema, req.body);
    checkModel(body.model, o.engine.modelId, o.modelAliases);
    checkTokenIds(body.tokens, o.frontend.vocabSize, 'tokens');
    return { prompt: await o.frontend.decode(body.tokens) };
  });

  app.get('/health', async (_req, reply) => {
    const err = o.fatal();
    if (err) return reply.code(503).send({ status: 'dead', ...envelope(asDead(err)) });
    return { status: 'ok' };
  });
  app.get('/ready', async (_req, reply) => {
    const s = o.state();
    if (s !== 'serving') return reply.code(503).send({ status: s });
    return { status: 'ready' };
  });
  app.get('/version', async () => ({
    name: 'tokenmill',
    version: o.version,
    model: o.engine.modelId,
    usd_per_hour: o.metrics.ledger.usdPerHour,
    usd_per_hour_source: o.metrics.price.source,
    usd_per_hour_basis: o.metrics.price.basis,
    node: process.version,
    system_fingerprint: o.systemFingerprint,
  }));
  app.get('/metrics', async (_req, reply) => {
    const m = await o.metrics.render();
    return reply.type(m.contentType).send(m.body);
  });
}

function asDead(e: Error): TokenmillError {
  return e instanceof TokenmillError ? e : new TokenmillError('engine_dead', e.message);
}
