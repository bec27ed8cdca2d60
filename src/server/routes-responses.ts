// POST /v1/responses (stateless): the request is translated into its chat form
// (responses-request.ts) and prepared by the chat pipeline (validation, template, sampling); one
// engine request runs it, and its output becomes Responses output items (responses-output.ts),
// returned whole or streamed as response.* events (errors after the stream opened: an `error`
// event). GET / DELETE / cancel of a stored response are 400s: nothing is stored.

import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EngineOutput, EngineRequest } from '../engine/engine-api.js';
import type { FinishReason } from '../engine/sampling-params.js';
import { checkFinishedChoice } from './structured-output.js';
import { TokenmillError, toTokenmillError } from '../util/errors.js';
import { abortOnClose, beginRequest, failure, raceTimeout, type RunContext } from './respond.js';
import { startOutputs, type TaggedOutput } from './output-merge.js';
import { chatPromptIds } from './prompt.js';
import {
  OutputAssembler,
  responseObject,
  type ResponseDelta,
  type ResponseEvent,
  type ResponseHeadInfo,
  type ResponseUsageTotals,
} from './responses-output.js';
import {
  rejectUnsupportedResponses,
  responsesIgnoredFields,
  responsesParam,
  responsesSchema,
  toChatRequest,
  type ResponsesBody,
} from './responses-request.js';
import { unknownFields } from './request-fields.js';
import { admitRequest, checkModel, traceUnknownFields, type OpenAiRouteOptions } from './routes-openai.js';
import { buildSamplingParams, rejectUnsupported } from './sampling.js';
import { chatSchema, parseBody, type ChatBody } from './schemas.js';
import { SseStream } from './sse.js';
import { chatParsing, withParsing } from './tools/chat-parsing.js';
import type { ChatOutputParser } from './tools/parser-select.js';
import { parseToolRequest } from './tools/tool-request.js';

export function registerResponsesRoutes(app: FastifyInstance, o: OpenAiRouteOptions): void {
  const schema = responsesSchema(o.limits);
  const chat = chatSchema(o.limits);
  app.post('/v1/responses', (req, reply) =>
    handleResponses(o, chat, parseBody(schema, req.body), req, reply, unknownFields(schema, req.body)),
  );
  const stateless = async (): Promise<never> => {
    throw new TokenmillError(
      'unsupported_feature',
      "tokenmill's Responses API is stateless: no response is stored, so none can be retrieved, listed, cancelled or deleted.",
      { param: 'response_id' },
    );
  };
  app.get('/v1/responses/:id', stateless);
  app.get('/v1/responses/:id/input_items', stateless);
  app.delete('/v1/responses/:id', stateless);
  app.post('/v1/responses/:id/cancel', stateless);
}

/** Run fn; a TokenmillError it throws names the Responses parameter instead of the chat one. */
async function asResponses<T>(messageInput: readonly number[], fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const te = toTokenmillError(e);
    const param = responsesParam(te.param, messageInput);
    if (param === (te.param ?? undefined)) throw te;
    throw new TokenmillError(te.code, te.message, { ...(param !== undefined ? { param } : {}), details: te.details, cause: te });
  }
}

interface Prepared {
  readonly head: ResponseHeadInfo;
  readonly request: EngineRequest;
  readonly arrivalMs: number;
  readonly account: string;
  /** Output parser (tool calls, reasoning) of the chat pipeline; null: the text is the message. */
  readonly parser: ChatOutputParser | null;
}

async function handleResponses(
  o: OpenAiRouteOptions,
  chatSchemaOf: ReturnType<typeof chatSchema>,
  body: ResponsesBody,
  req: FastifyRequest,
  reply: FastifyReply,
  unknown: readonly string[],
): Promise<unknown> {
  const { arrivalMs, engine, frontend } = beginRequest(o.ctx);
  rejectUnsupportedResponses(body);
  traceUnknownFields(reply, [...responsesIgnoredFields(body), ...unknown]);
  const { chat, messageInput } = toChatRequest(body);
  const chatBody: ChatBody = await asResponses(messageInput, () => {
    const b = parseBody(chatSchemaOf, chat);
    rejectUnsupported(b, 'chat');
    return b;
  });
  checkModel(chatBody.model, engine.modelId, o.modelAliases);
  o.rateLimiter?.take(req.account);
  const admitted = admitRequest(engine, reply); // shed before the template and the tokenizer run
  const tools = await asResponses(messageInput, () => parseToolRequest(chatBody));
  const prompt = await asResponses(messageInput, () => chatPromptIds(chatBody, frontend, tools));
  const promptTokenIds = prompt.ids;
  const parsing = await asResponses(messageInput, () => chatParsing(o.parsers, tools, frontend, prompt.text));
  const baseParams = await asResponses(messageInput, () =>
    buildSamplingParams(chatBody, 'chat', {
      numPromptTokens: promptTokenIds.length,
      maxModelLen: engine.maxModelLen,
    }),
  );
  const params = withParsing(baseParams, parsing);
  const id = `resp_${randomUUID().replaceAll('-', '')}`;
  const prepared: Prepared = {
    head: { id, createdAt: Math.floor(arrivalMs / 1000), model: engine.modelId },
    request: {
      requestId: id,
      promptTokenIds,
      promptParam: 'input',
      params,
      accountKey: req.account,
      priority: body.priority ?? 0,
      admitted,
    },
    arrivalMs,
    account: req.account,
    parser: parsing.create ? parsing.create() : null,
  };
  reply.header('x-tokenmill-usd-per-hour', String(o.ctx.metrics.ledger.usdPerHour));
  const end = o.begin();
  try {
    if (body.stream) {
      await streamResponse(o.ctx, prepared, body, reply);
      if (!reply.sent) reply.hijack();
      return undefined;
    }
    return await collectResponse(o.ctx, prepared, body, reply);
  } finally {
    end();
  }
}

/** Usage, timing metrics and the finish reason of the one engine request. */
class ResponseTracker {
  readonly usage: ResponseUsageTotals = {
    numPromptTokens: 0,
    numCachedPromptTokens: 0,
    numGeneratedTokens: 0,
    costUsd: 0,
    numReasoningTokens: 0,
  };
  finishReason: FinishReason | null = null;
  private lastTokenMs: number | null = null;
  /** The output text so far (a structured output is validated when it finishes). */
  private text = '';

  constructor(
    private readonly ctx: RunContext,
    private readonly p: Prepared,
  ) {}

  /** Fold one output in; returns its deltas for the assembler. */
  add(out: EngineOutput): ResponseDelta[] {
    const now = Date.now();
    if (out.newTokenIds.length > 0) {
      if (this.lastTokenMs === null) this.ctx.metrics.observeFirstToken((now - this.p.arrivalMs) / 1000);
      else this.ctx.metrics.observeInterToken((now - this.lastTokenMs) / 1000, out.newTokenIds.length);
      this.lastTokenMs = now;
    }
    const u = this.usage;
    u.numPromptTokens = out.numPromptTokens;
    u.numCachedPromptTokens = out.numCachedPromptTokens;
    u.numGeneratedTokens = Math.max(u.numGeneratedTokens, out.numGeneratedTokens);
    u.costUsd = Math.max(u.costUsd, out.costUsd);
    if (out.finished) this.finishReason = out.finishReason ?? 'stop';
    const parser = this.p.parser;
    let deltas: ResponseDelta[];
    if (parser === null) deltas = out.newText.length > 0 ? [{ type: 'content', text: out.newText }] : [];
    else {
      deltas = parser.push(out.newText, out.newTokenIds);
      if (out.finished) deltas.push(...parser.finish());
      u.numReasoningTokens = parser.numReasoningTokens;
    }
    for (const d of deltas) if (d.type === 'content') this.text += d.text;
    // A structured output is validated before it is returned (structured_output_invalid).
    if (out.finished) checkFinishedChoice(this.p.request.params.constraint, this.text, this.finishReason);
    return deltas;
  }

  get status(): 'completed' | 'incomplete' {
    return this.finishReason === 'length' ? 'incomplete' : 'completed';
  }

  /** Throw if the request ended by abort (drain, disconnect) or an engine fault. */
  checkOutcome(): void {
    if (this.finishReason === 'abort') {
      throw this.ctx.isDraining()
        ? new TokenmillError('server_draining', 'The server shut down before this request finished.', { details: { retryAfterSeconds: 5 } })
        : new TokenmillError('request_aborted', 'The request was aborted.');
    }
    if (this.finishReason === 'error') throw this.ctx.fatal() ?? new TokenmillError('internal_error', 'The engine failed this request.');
  }

  finish(clientGone = false): void {
    const u = this.usage;
    this.ctx.metrics.observeFinished({
      account: this.p.account,
      e2eSeconds: (Date.now() - this.p.arrivalMs) / 1000,
      promptTokens: u.numPromptTokens,
      completionTokens: u.numGeneratedTokens,
      costUsd: u.costUsd,
      finishReasons: [clientGone ? 'abort' : (this.finishReason ?? 'stop')],
    });
  }
}

async function collectResponse(ctx: RunContext, p: Prepared, body: ResponsesBody, reply: FastifyReply): Promise<unknown> {
  const { ac, clientGone } = abortOnClose(reply);
  const tracker = new ResponseTracker(ctx, p);
  const asm = new OutputAssembler();
  try {
    const it = startOutputs(ctx.engine, [p.request], ac.signal);
    for (let r = await it.next(); !r.done; r = await it.next()) asm.push(tracker.add(r.value.out));
    if (clientGone()) {
      tracker.finish(true);
      throw new TokenmillError('request_aborted', 'The client disconnected.');
    }
    tracker.checkOutcome();
  } catch (e) {
    ac.abort();
    throw failure(ctx, e);
  }
  tracker.finish();
  asm.finish(tracker.status);
  reply.header('x-tokenmill-cost-usd', tracker.usage.costUsd.toFixed(9));
  return responseObject(p.head, body, { status: tracker.status, output: asm.items, usage: tracker.usage });
}

async function streamResponse(ctx: RunContext, p: Prepared, body: ResponsesBody, reply: FastifyReply): Promise<void> {
  const { ac, clientGone } = abortOnClose(reply);
  const tracker = new ResponseTracker(ctx, p);
  const sse = new SseStream(reply);
  let seq = 0;
  const send = (e: ResponseEvent): void => {
    sse.open();
    sse.event(e.type, { ...e, sequence_number: seq++ });
  };
  const asm = new OutputAssembler(send);
  let it: AsyncIterator<TaggedOutput> | null = null;
  try {
    it = startOutputs(ctx.engine, [p.request], ac.signal); // refusals (overloaded, too long) are still HTTP errors
    const inProgress = responseObject(p.head, body, { status: 'in_progress', output: [], usage: null });
    send({ type: 'response.created', response: inProgress });
    send({ type: 'response.in_progress', response: inProgress });
    let next = it.next();
    for (;;) {
      const r = await raceTimeout(next, ctx.pingIntervalMs);
      if (r === 'timeout') {
        sse.comment('ping');
        continue;
      }
      if (r.done) break;
      next = it.next();
      next.catch(() => undefined); // observed on the next turn; never an unhandled rejection
      const deltas = tracker.add(r.value.out);
      if (clientGone()) break;
      if (tracker.finishReason !== 'abort' && tracker.finishReason !== 'error') asm.push(deltas);
    }
    if (clientGone()) {
      tracker.finish(true);
      return;
    }
    tracker.checkOutcome();
    tracker.finish();
    asm.finish(tracker.status);
    const status = tracker.status;
    send({
      type: status === 'completed' ? 'response.completed' : 'response.incomplete',
      response: responseObject(p.head, body, { status, output: asm.items, usage: tracker.usage }),
    });
    sse.end();
  } catch (e) {
    ac.abort();
    const te = failure(ctx, e);
    if (!sse.isOpen) throw te;
    send({ type: 'error', code: te.code, message: te.message, param: te.param });
    sse.end();
  } finally {
    if (ac.signal.aborted) void it?.return?.(undefined)?.catch(() => undefined);
  }
}
