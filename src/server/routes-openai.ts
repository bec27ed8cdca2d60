// POST /v1/completions and /v1/chat/completions: admission (state, rate limit, queue bound),
// validation, prompt -> tokens (chat: tools and tool messages into the template), SamplingParams,
// the output parsers (tool calls, reasoning), then respond.ts runs it (JSON or SSE).

import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AdmissionTicket, EngineClient } from '../engine/engine-api.js';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';
import { beginRequest, runNonStream, runStream, type RunContext } from './respond.js';
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
  /** Other names clients may use for the served model. */
  readonly modelAliases: readonly string[];
  /** Tool-call and reasoning parsers of the served model. */
  readonly parsers: OutputParserConfig;
  /** Track in-flight requests (for draining). */
  begin(): () => void;
}

export function checkModel(requested: string | null | undefined, served: string, aliases: readonly string[] = []): void {
  if (requested === undefined || requested === null || requested === '' || requested === served || aliases.includes(requested)) return;
  throw new TokenmillError('model_not_found', `The model '${requested}' does not exist on this server; it serves '${served}'.`, {
    param: 'model',
  });
}

export function registerOpenAiRoutes(app: FastifyInstance, o: OpenAiRouteOptions): void {
  const completion = completionSchema(o.limits);
  const chat = chatSchema(o.limits);
  app.post('/v1/completions', (req, reply) =>
    handle(o, 'completion', parseBody(completion, req.body), req, reply, unknownFields(completion, req.body)),
  );
  app.post('/v1/chat/completions', (req, reply) => handle(o, 'chat', parseBody(chat, req.body), req, reply, unknownFields(chat, req.body)));
}

async function handle(
  o: OpenAiRouteOptions,
  kind: RouteKind,
  body: CompletionBody | ChatBody,
  req: FastifyRequest,
  reply: FastifyReply,
  unknown: readonly string[],
): Promise<unknown> {
  const { arrivalMs, engine, frontend } = beginRequest(o.ctx);
  rejectUnsupported(body, kind);
  traceUnknownFields(reply, [...rejectIgnoredFields(body, kind), ...unknown]);
  checkModel(body.model, engine.modelId, o.modelAliases);
  o.rateLimiter?.take(req.account);
  const admitted = admitRequest(engine, reply); // shed before the template and the tokenizer run

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
    throw new TokenmillError(
      'invalid_request',
      `${prompts.length} prompts x n=${n} gives ${prompts.length * n} choices; the limit is ${o.limits.maxChoices}.`,
      { param: 'n' },
    );
  }
  // Per prompt: the default max_tokens and the context check depend on its length.
  const paramsList = prompts.map((ids) => {
    const p = buildSamplingParams(body, kind, { numPromptTokens: ids.length, maxModelLen: engine.maxModelLen });
    return parsing === null ? p : withParsing(p, parsing);
  });

  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
  // OpenAI's end-user tag: kept with the request in the log (tokenmill has no abuse monitoring to feed).
  if (typeof body.user === 'string' && body.user !== '')
    log.debug(`${id}: user ${JSON.stringify(body.user.slice(0, 256))}, account ${req.account}`);
  const spec = {
    kind,
    head: { id, created: Math.floor(arrivalMs / 1000), model: engine.modelId, systemFingerprint: o.ctx.systemFingerprint },
    requests: prompts.map((promptTokenIds, i) => ({
      requestId: prompts.length === 1 ? id : `${id}-${i}`,
      promptTokenIds,
      promptParam: promptParam(kind === 'chat' ? 'messages' : 'prompt', i, prompts.length),
      params: paramsList[i]!,
      accountKey: req.account,
      priority: body.priority ?? 0,
      admitted,
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

/**
 * Reserve this request's place among the waiting ones (engine/admission.ts decides) before it is
 * prepared; the engine takes the place when the request is queued, and an answer sent before that
 * (a 400, a disconnect) gives it back.
 */
export function admitRequest(engine: EngineClient, reply: FastifyReply): AdmissionTicket | undefined {
  const ticket = engine.admit?.();
  if (ticket !== undefined) reply.raw.once('close', () => ticket.release());
  return ticket;
}

const warnedFields = new Set<string>();
const MAX_WARNED_FIELDS = 256;

/** Fields without effect and fields no schema knows are accepted (newer SDKs send newer fields) but never without a trace. */
export function traceUnknownFields(reply: FastifyReply, fields: readonly string[]): void {
  if (fields.length === 0) return;
  reply.header('x-tokenmill-ignored-fields', ignoredFieldsHeader(fields));
  // Bounded: a client may invent names. Past the bound nothing more is logged (one line says so),
  // so invented names cannot flood the log either.
  if (warnedFields.size >= MAX_WARNED_FIELDS) return;
  const fresh = [...new Set(fields.filter((f) => !warnedFields.has(f)))].slice(0, MAX_WARNED_FIELDS - warnedFields.size);
  for (const f of fresh) warnedFields.add(f);
  if (fresh.length > 0)
    log.warn(`request fields ignored (unknown to tokenmill; named in x-tokenmill-ignored-fields): ${fresh.map(safeName).join(', ')}`);
  if (warnedFields.size >= MAX_WARNED_FIELDS) {
    log.warn(`${MAX_WARNED_FIELDS} distinct ignored field names logged; further ones are only named in x-tokenmill-ignored-fields`);
  }
}

function safeName(f: string): string {
  return f
    .slice(0, 64)
    .replace(/[^\x21-\x7e]/g, '?')
    .replaceAll(',', '?');
}

/** The header value: at most 32 names of at most 64 header-safe characters (names come from the client). */
function ignoredFieldsHeader(fields: readonly string[]): string {
  const shown = fields.slice(0, 32).map(safeName);
  return fields.length > shown.length ? `${shown.join(',')},(${fields.length - shown.length} more)` : shown.join(',');
}
