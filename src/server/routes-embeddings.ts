// POST /v1/embeddings: each input becomes one embedding request on the Engine (prefill only, its
// final hidden states pooled as the server was configured: last token or mean), then truncated to
// `dimensions`, L2-normalised and encoded (float or base64). Usage and cost as the other routes.

import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EngineRequest } from '../engine/engine-api.js';
import type { PoolingType } from '../engine/pooling.js';
import { samplingParams } from '../engine/sampling-params.js';
import { TokenmillError } from '../util/errors.js';
import { embeddingInputIds, embeddingResponse, finishEmbedding } from './embeddings.js';
import { abortOnClose, failure, refuseIfDead } from './respond.js';
import { startOutputs } from './output-merge.js';
import { promptParam } from './prompt.js';
import { unknownFields } from './request-fields.js';
import { admitRequest, checkModel, traceUnknownFields, type OpenAiRouteOptions } from './routes-openai.js';
import { embeddingSchema, parseBody, type EmbeddingBody } from './schemas.js';

/** Embeddings generate nothing; the engine ignores maxTokens for them. */
const EMBED_PARAMS = samplingParams({ temperature: 0, maxTokens: 1 });

export function registerEmbeddingRoutes(app: FastifyInstance, o: OpenAiRouteOptions, pooling: PoolingType): void {
  const schema = embeddingSchema(o.limits);
  app.post('/v1/embeddings', (req, reply) => {
    const body = parseBody(schema, req.body);
    traceUnknownFields(reply, unknownFields(schema, req.body)); // accepted, never silently
    return handleEmbeddings(o, pooling, body, req, reply);
  });
}

async function handleEmbeddings(
  o: OpenAiRouteOptions,
  pooling: PoolingType,
  body: EmbeddingBody,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const arrivalMs = Date.now();
  const { engine, frontend, metrics } = o.ctx;
  refuseIfDead(o.ctx);
  checkModel(body.model, engine.modelId, o.modelAliases);
  const size = engine.embeddingSize;
  if (size === undefined)
    throw new TokenmillError('unsupported_feature', `The model '${engine.modelId}' serves no embeddings.`, { param: 'model' });
  const dims = body.dimensions ?? null;
  if (dims !== null && dims > size)
    throw new TokenmillError('invalid_request', `dimensions ${dims} exceeds the model's embedding size ${size}.`, { param: 'dimensions' });
  o.rateLimiter?.take(req.account);
  const admitted = admitRequest(engine, reply); // shed before the tokenizer runs

  const inputs = await embeddingInputIds(body, frontend);
  const id = `embd-${randomUUID().replaceAll('-', '')}`;
  const requests: EngineRequest[] = inputs.map((promptTokenIds, i) => ({
    requestId: `${id}-${i}`,
    promptTokenIds,
    promptParam: promptParam('input', i, inputs.length),
    params: EMBED_PARAMS,
    pooling,
    accountKey: req.account,
    priority: body.priority ?? 0,
    admitted,
  }));
  reply.header('x-tokenmill-usd-per-hour', String(metrics.ledger.usdPerHour));
  const end = o.begin();
  const { ac, clientGone } = abortOnClose(reply);
  const vectors: Float32Array[] = new Array(inputs.length);
  let promptTokens = 0;
  let costUsd = 0;
  try {
    const it = startOutputs(engine, requests, ac.signal);
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const { sub, out } = r.value;
      if (!out.finished) continue;
      if (out.finishReason === 'abort') {
        throw o.ctx.isDraining()
          ? new TokenmillError('server_draining', 'The server shut down before this request finished.', {
              details: { retryAfterSeconds: 5 },
            })
          : new TokenmillError('request_aborted', clientGone() ? 'The client disconnected.' : 'The request was aborted.');
      }
      if (out.embedding === undefined)
        throw o.ctx.fatal() ?? new TokenmillError('internal_error', 'The engine failed this embedding request.');
      vectors[sub] = finishEmbedding(out.embedding, dims);
      promptTokens += out.numPromptTokens;
      costUsd += out.costUsd;
    }
  } catch (e) {
    ac.abort(); // stop sibling requests of a failed one
    throw failure(o.ctx, e);
  } finally {
    end();
  }
  metrics.observeFinished({
    account: req.account,
    e2eSeconds: (Date.now() - arrivalMs) / 1000,
    promptTokens,
    completionTokens: 0,
    costUsd,
    finishReasons: vectors.map(() => 'stop'),
  });
  reply.header('x-tokenmill-cost-usd', costUsd.toFixed(9));
  return embeddingResponse(engine.modelId, vectors, body.encoding_format ?? 'float', promptTokens, costUsd);
}
