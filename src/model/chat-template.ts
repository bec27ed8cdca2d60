// Chat template rendering with @huggingface/jinja under a deadline. Rendering is synchronous and a
// hostile template can loop for ever, so it runs in a worker thread that is terminated (and
// replaced) when the deadline passes. Errors: chat_template_missing / _error / _timeout.
import { Worker } from 'node:worker_threads';
import { TokenmillError } from '../util/errors.js';
import { BUILTIN_CHAT_TEMPLATES } from './builtin-chat-templates.js';
import type { ModelTokenizer } from './tokenizer.js';

export interface ChatMessage {
  readonly role: string;
  /** A string, or whatever richer structure the template understands (content parts). */
  readonly content: unknown;
  readonly [key: string]: unknown;
}

export interface ChatTemplateContext {
  readonly messages: readonly ChatMessage[];
  readonly addGenerationPrompt?: boolean;
  readonly bosToken?: string | null;
  readonly eosToken?: string | null;
  /** Extra template variables (tools, enable_thinking, ...), passed as they are. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export const DEFAULT_CHAT_TEMPLATE_TIMEOUT_MS = 2000;
/** Renders waiting for the worker (each holds its request's messages): beyond it, server_overloaded. */
export const MAX_QUEUED_RENDERS = 256;

/** What a chat request to a model without a template is told (serve and generate have --chat-template). */
export const NO_TEMPLATE_MESSAGE =
  'this model has no chat template: use the completions endpoint, or start the server with --chat-template FILE|NAME ' +
  `(a Jinja file, or one of the built-in ${Object.keys(BUILTIN_CHAT_TEMPLATES).join(', ')})`;

// Plain JS so it runs the same from src (tsx) and dist; imports jinja by the URL the parent resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const cache = new Map();
import(workerData.jinjaUrl).then(({ Template }) => {
  parentPort.on('message', (req) => {
    try {
      let t = cache.get(req.template);
      if (!t) {
        t = new Template(req.template);
        if (cache.size > 16) cache.clear();
        cache.set(req.template, t);
      }
      const ctx = req.context;
      // jinja declares these itself (raise_exception throws); a context copy would clash.
      delete ctx.raise_exception; delete ctx.strftime_now;
      parentPort.postMessage({ id: req.id, ok: true, text: t.render(ctx) });
    } catch (e) {
      parentPort.postMessage({ id: req.id, ok: false, message: e && e.message ? e.message : String(e) });
    }
  });
  parentPort.postMessage({ ready: true });
}, (e) => parentPort.postMessage({ fatal: String(e && e.message ? e.message : e) }));
`;

interface Pending {
  readonly id: number;
  readonly template: string;
  readonly context: Record<string, unknown>;
  readonly timeoutMs: number;
  readonly resolve: (text: string) => void;
  readonly reject: (e: TokenmillError) => void;
}

type WorkerReply = { id?: number; ok?: boolean; text?: string; message?: string; ready?: boolean; fatal?: string };

/** One worker thread rendering requests one at a time; restarted after a timeout. */
export class ChatTemplateRenderer {
  private worker: Worker | null = null;
  private ready = false;
  private readonly queue: Pending[] = [];
  private current: Pending | null = null;
  private timer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private closed = false;

  constructor(private readonly defaultTimeoutMs = DEFAULT_CHAT_TEMPLATE_TIMEOUT_MS) {}

  /** Render template with the HF variables (messages, add_generation_prompt, bos_token, eos_token). */
  render(template: string | null | undefined, ctx: ChatTemplateContext, timeoutMs = this.defaultTimeoutMs): Promise<string> {
    if (template === null || template === undefined || template === '') {
      return Promise.reject(new TokenmillError('chat_template_missing', NO_TEMPLATE_MESSAGE));
    }
    if (this.closed) return Promise.reject(new TokenmillError('chat_template_error', 'chat template renderer is closed'));
    if (this.queue.length >= MAX_QUEUED_RENDERS) {
      const why = `The server is overloaded: ${this.queue.length} chat templates are waiting to be rendered; retry in 1 s.`;
      return Promise.reject(new TokenmillError('server_overloaded', why, {
        details: { retryAfterSeconds: 1 },
      }));
    }
    const context: Record<string, unknown> = {
      ...(ctx.extra ?? {}),
      messages: ctx.messages,
      add_generation_prompt: ctx.addGenerationPrompt ?? false,
      bos_token: ctx.bosToken ?? '',
      eos_token: ctx.eosToken ?? '',
    };
    return new Promise<string>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, template, context, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  /** Stop the worker; pending renders fail. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new TokenmillError('chat_template_error', 'chat template renderer closed');
    this.current?.reject(err);
    this.current = null;
    for (const p of this.queue.splice(0)) p.reject(err);
    this.clearTimer();
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { jinjaUrl: import.meta.resolve('@huggingface/jinja') },
      // A hostile template that hoards memory kills the worker (-> chat_template_error), not the server.
      resourceLimits: { maxOldGenerationSizeMb: 512 },
    });
    w.unref();
    this.ready = false;
    w.on('message', (m: WorkerReply) => this.onMessage(w, m));
    w.on('error', (e) => this.onWorkerDeath(w, `chat template worker failed: ${e.message}`));
    w.on('exit', () => this.onWorkerDeath(w, 'chat template worker exited'));
    return w;
  }

  private pump(): void {
    if (this.current || this.queue.length === 0 || this.closed) return;
    if (!this.worker) this.worker = this.spawn();
    if (!this.ready) return; // resumes on the ready message
    const p = this.queue.shift()!;
    this.current = p;
    this.worker.ref();
    this.timer = setTimeout(() => this.onTimeout(p), p.timeoutMs);
    try {
      this.worker.postMessage({ id: p.id, template: p.template, context: p.context });
    } catch (e) {
      // The context could not be cloned (functions, symbols): fail this render only.
      this.finish();
      p.reject(new TokenmillError('chat_template_error', `chat template context cannot be sent to the renderer: ${(e as Error).message}`));
      this.pump();
    }
  }

  private onMessage(w: Worker, m: WorkerReply): void {
    if (w !== this.worker) return;
    if (m.ready) { this.ready = true; this.pump(); return; }
    if (m.fatal !== undefined) { this.failAll(`chat template worker cannot load jinja: ${m.fatal}`); return; }
    const p = this.current;
    if (!p || m.id !== p.id) return;
    this.finish();
    if (m.ok) p.resolve(m.text ?? '');
    else p.reject(new TokenmillError('chat_template_error', `chat template: ${m.message ?? 'unknown error'}`));
    this.pump();
  }

  private onTimeout(p: Pending): void {
    if (this.current !== p) return;
    this.finish();
    const w = this.worker;
    this.worker = null; // the next render spawns a fresh worker
    void w?.terminate();
    p.reject(new TokenmillError('chat_template_timeout', `chat template rendering exceeded ${p.timeoutMs} ms`, { details: { timeoutMs: p.timeoutMs } }));
    this.pump();
  }

  private onWorkerDeath(w: Worker, why: string): void {
    if (w !== this.worker) return;
    this.worker = null;
    const p = this.current;
    this.finish();
    p?.reject(new TokenmillError('chat_template_error', why));
    this.pump();
  }

  private failAll(why: string): void {
    const err = new TokenmillError('chat_template_error', why);
    this.current?.reject(err);
    this.finish();
    for (const p of this.queue.splice(0)) p.reject(err);
  }

  private finish(): void {
    this.current = null;
    this.clearTimer();
    this.worker?.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

let shared: ChatTemplateRenderer | null = null;

/** Render with a process-wide renderer (one worker thread, created on first use). */
export function renderChatTemplate(template: string | null | undefined, ctx: ChatTemplateContext, timeoutMs?: number): Promise<string> {
  shared ??= new ChatTemplateRenderer();
  return shared.render(template, ctx, timeoutMs);
}

/** Pick a named template: `name` when given (chat_template_missing if absent), else 'default'. */
export function selectChatTemplate(templates: Readonly<Record<string, string>>, name?: string): string | null {
  if (name !== undefined) {
    const t = templates[name];
    if (t === undefined) throw new TokenmillError('chat_template_missing', `no chat template named "${name}" (have: ${Object.keys(templates).join(', ') || 'none'})`);
    return t;
  }
  return templates.default ?? null;
}

export interface RenderChatOptions {
  readonly addGenerationPrompt?: boolean;
  /** A named template from the tokenizer config (default: the unnamed one). */
  readonly templateName?: string;
  /** A template that replaces the model's own (e.g. --chat-template). */
  readonly template?: string;
  readonly extra?: Readonly<Record<string, unknown>>;
  readonly timeoutMs?: number;
  readonly renderer?: ChatTemplateRenderer;
}

/**
 * Render messages with the model's template and its bos/eos strings. Encode the result with
 * addSpecialTokens: false (as HF apply_chat_template and vLLM do): the template places BOS itself.
 */
export function renderChat(tok: Pick<ModelTokenizer, 'chatTemplates' | 'config'>, messages: readonly ChatMessage[], opts: RenderChatOptions = {}): Promise<string> {
  let template: string | null;
  try {
    template = opts.template ?? selectChatTemplate(tok.chatTemplates, opts.templateName);
  } catch (e) {
    return Promise.reject(e);
  }
  const ctx: ChatTemplateContext = {
    messages, addGenerationPrompt: opts.addGenerationPrompt ?? true, bosToken: tok.config.bosToken, eosToken: tok.config.eosToken, extra: opts.extra,
  };
  return opts.renderer ? opts.renderer.render(template, ctx, opts.timeoutMs) : renderChatTemplate(template, ctx, opts.timeoutMs);
}
