// POST /v1/completions/render and /v1/chat/completions/render: the prompt token ids a completion or
// chat request would run on, without running it (what a router's precise prefix scorer hashes into
// blocks). The body is the same request the generating route takes, checked the same way (model,
// unsupported fields, tools, context length), so a render fails exactly when the request would.
// Shapes follow vLLM's render routes, as llm-d-router's tokenizer reads them: completions answers a
// list with one {token_ids} per prompt, chat a single {token_ids}. Nothing reaches the engine.

import type { FastifyInstance } from 'fastify';
import { chatPromptIds, completionPromptIds, promptParam } from './prompt.js';
import type { OpenAiRouteOptions } from './routes-openai.js';
import { checkModel } from './routes-openai.js';
import { buildSamplingParams, rejectUnsupported, type RouteKind } from './sampling.js';
import { chatSchema, completionSchema, parseBody, type ChatBody, type CompletionBody } from './schemas.js';
import { parseToolRequest } from './tools/tool-request.js';

export interface RenderedPrompt {
  readonly token_ids: number[];
  readonly model: string;
}

export function registerRenderRoutes(app: FastifyInstance, o: OpenAiRouteOptions): void {
  const completion = completionSchema(o.limits);
  const chat = chatSchema(o.limits);
  const { engine, frontend } = o.ctx;
  // The engine's own validation (the one the generating route's requests pass), with nothing queued.
  const check = (body: CompletionBody | ChatBody, kind: RouteKind, prompts: number[][]): RenderedPrompt[] => {
    prompts.forEach((promptTokenIds, i) => {
      const params = buildSamplingParams(body, kind, { numPromptTokens: promptTokenIds.length, maxModelLen: engine.maxModelLen });
      const field = kind === 'chat' ? 'messages' : 'prompt';
      engine.validate({ requestId: `render-${i}`, promptTokenIds, promptParam: promptParam(field, i, prompts.length), params });
    });
    return prompts.map((ids) => ({ token_ids: ids, model: engine.modelId }));
  };
  app.post('/v1/completions/render', async (req) => {
    const body = parseBody(completion, req.body);
    rejectUnsupported(body, 'completion');
    checkModel(body.model, engine.modelId, o.modelAliases);
    return check(body, 'completion', await completionPromptIds(body, frontend));
  });
  app.post('/v1/chat/completions/render', async (req) => {
    const body = parseBody(chat, req.body);
    rejectUnsupported(body, 'chat');
    checkModel(body.model, engine.modelId, o.modelAliases);
    const prompt = await chatPromptIds(body, frontend, parseToolRequest(body));
    return check(body, 'chat', [prompt.ids])[0]!;
  });
}
