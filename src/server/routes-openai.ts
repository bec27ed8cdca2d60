// POST /v1/completions and /v1/chat/completions: admission (state, rate limit, queue bound),
// validation, prompt -> tokens (chat: tools and tool messages into the template), SamplingParams,
// the output parsers (tool calls, reasoning), then respond.ts runs it (JSON or SSE).

import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';
import { refuseIfDead, runNonStream, runStream, type RunContext } from './respond.js';
import { chatPromptIds, completionPromptIds, promptParam } from './prompt.js';
import type { KeyRateLimiter } from './rate-limit.js';
import { rejectIgnoredFields, unknownFields } from './request-fields.js';
import { buildSamplingParams, rejectUnsupported, type RouteKind } from './sampling.js';
import { chatSchema, completionSchema, parseBody, type ChatBody, type CompletionBody, type ServerLimits } from './schemas.js';
import { chatParsing, withParsing, type ChatParsing, type OutputParserConfig } from './tools/chat-parsing.js';
import { parseToolRequest } from './tools/tool-request.js';

export interface OpenAiRouteOptions {
  readonly ctx: RunContext;
  readonly limits: ServerLimits;
  readonly rateLimiter: KeyRateLimiter | null;
  /** Refuse new requests once the engine's waiting queue holds this many (undefined: engine decides). */
  readonly maxQueue: number | undefined;
  /** Other names clients may use for the served model. */
  readonly modelAliases: readonly string[];
  /** Tool-call and reasoning parsers of the served model. */
  readonly parsers: OutputParserConfig;
  /** Track in-flight requests (for draining). */
  begin(): () => void;
}

export function checkModel(requested: string | null | undefined, served: string, aliases: readonly string[] = []): void {
  if (requested === undefined || requested === null || requested === '' || requested === served || aliases.includes(requested)) return;
  throw new TokenmillError('model_not_found', `The model '${requested}' does not exist on this server; it serves '${served}'.`, { param: 'model' });
}

export function registerOpenAiRoutes(app: FastifyInstance, o: OpenAiRouteOptions): void {
  const completion = completionSchema(o.limits);
  const chat = chatSchema(o.limits);
  app.post('/v1/completions', (req, reply) => handle(o, 'completion', parseBody(completion, req.body), req, reply, unknownFields(completion, req.body)));
  app.post('/v1/chat/completions', (req, reply) => handle(o, 'chat', parseBody(chat, req.body), req, reply, unknownFields(chat, req.body)));
}

async function handle(o: OpenAiRouteOptions, kind: RouteKind, body: CompletionBody | ChatBody, req: FastifyRequest, reply: FastifyReply, unknown: readonly string[]): Promise<unknown> {
  const arrivalMs = Date.now();
  const { engine, frontend } = o.ctx;
  refuseIfDead(o.ctx);
  rejectUnsupported(body, kind);
  traceUnknownFields(reply, [...rejectIgnoredFields(body, kind), ...unknown]);
  checkModel(body.model, engine.modelId, o.modelAliases);
  o.rateLimiter?.take(req.account);

  let prompts: number[][];
  let parsing: ChatParsing | null = null;
  if (kind === 'chat') {
    const chat = body as ChatBody;
    const tools = parseToolRequest(chat);
    const prompt = await chatPromptIds(chat, frontend, tools);
    parsing = chatParsing(o.parsers, tools, frontend, prompt.text);
    prompts = [prompt.ids];
  } else prompts = await completionPromptIds(body as CompletionBody, frontend);
  const n = body.n ?? 1;
  if (prompts.length * n > o.limits.maxChoices) {
    throw new TokenmillError('invalid_request', `${prompts.length} prompts x n=${n} gives ${prompts.length * n} choices; the limit is ${o.limits.maxChoices}.`, { param: 'n' });
  }
  // Per prompt: the default max_tokens and the context check depend on its length.
  const paramsList = prompts.map((ids) => {
    const p = buildSamplingParams(body, kind, { numPromptTokens: ids.length, maxModelLen: engine.maxModelLen });
    return parsing === null ? p : withParsing(p, parsing);
  });
  if (o.maxQueue !== undefined && engine.stats().numWaiting >= o.maxQueue) {
    throw new TokenmillError('server_overloaded', `The server is overloaded (${o.maxQueue} requests waiting); retry shortly.`, { details: { retryAfterSeconds: 1 } });
  }

  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
  // OpenAI's end-user tag: kept with the request in the log (tokenmill has no abuse monitoring to feed).
  if (typeof body.user === 'string' && body.user !== '') log.debug(`${id}: user ${JSON.stringify(body.user.slice(0, 256))}, account ${req.account}`);
  const spec = {
    kind,
    head: { id, created: Math.floor(arrivalMs / 1000), model: engine.modelId, systemFingerprint: o.ctx.systemFingerprint },
    requests: prompts.map((promptTokenIds, i) => ({
      requestId: prompts.length === 1 ? id : `${id}-${i}`, promptTokenIds, promptParam: promptParam(kind === 'chat' ? 'messages' : 'prompt', i, prompts.length), params: paramsList[i]!, accountKey: req.account, priority: body.priority ?? 0,
    })),
    includeUsage: body.stream_options?.include_usage === true,
    wantLogprobs: paramsList[0]!.logprobs !== null,
    arrivalMs,
    account: req.account,
    parsers: parsing?.create ? { create: parsing.create, reasoning: parsing.reasoning } : null,
  };
  // Every costed response echoes the price its cost was computed at.
  reply.header('x-tokenmill-usd-per-hour', String(o.ctx.metrics.ledger.usdPerHour));
  reply.header('x-tokenmill-usd-per-hour-source', o.ctx.metrics.price.source); // 'assumed': no --usd-per-hour
  const end = o.begin();
  try {
    if (body.stream) {
      await runStream(o.ctx, spec, reply);
      if (!reply.sent) reply.hijack();
      return undefined;
    }
    return await runNonStream(o.ctx, spec, reply);
  } finally {
    end();
  }
}

const warnedFields = new Set<string>();

/** Fields without effect and fields no schema knows are accepted (newer SDKs send newer fields) but never without a trace. */
export function traceUnknownFields(reply: FastifyReply, fields: readonly string[]): void {
  if (fields.length === 0) return;
  reply.header('x-tokenmill-ignored-fields', fields.join(','));
  const fresh = fields.filter((f) => !warnedFields.has(f));
  for (const f of fresh) if (warnedFields.size < 256) warnedFields.add(f); // bounded: a client may invent names
  if (fresh.length > 0) log.warn(`request fields ignored (unknown to tokenmill; named in x-tokenmill-ignored-fields): ${fresh.join(', ')}`);
}
