// Chat template rendering with @huggingface/jinja under a deadline. Rendering is synchronous and a
// hostile template can loop for ever or allocate without bound, so it runs in a child process that is
// killed (and replaced) when the deadline passes, and whose own heap cap ends it on a runaway
// allocation. (A worker thread is not enough: one huge allocation past a worker's resourceLimits
// aborts the whole server process.) Errors: chat_template_missing / _error / _timeout.
import { spawn, type ChildProcess } from 'node:child_process';
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

// Plain JS so it runs the same from src (tsx) and dist; imports jinja by the URL the parent resolved
// and passed as its one argument (process.argv[1] under node -e).
const WORKER_SOURCE = `
const cache = new Map();
process.on('disconnect', () => process.exit(0));
import(process.argv[1]).then(({ Template }) => {
  process.on('message', (req) => {
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
      process.send({ id: req.id, ok: true, text: t.render(ctx) });
    } catch (e) {
      process.send({ id: req.id, ok: false, message: e && e.message ? e.message : String(e) });
    }
  });
  process.send({ ready: true });
}, (e) => process.send({ fatal: String(e && e.message ? e.message : e) }));
`;

/**
 * The renderer's heap cap: holds any real template's output many times over, and ends a hostile
 * one (range(1e9), list doubling) long before it costs the host real memory.
 */
const RENDERER_HEAP_MB = 128;

type Renderer = ChildProcess;

interface Pending {
  readonly id: number;
  readonly template: string;
  readonly context: Record<string, unknown>;
  readonly timeoutMs: number;
  readonly resolve: (text: string) => void;
  readonly reject: (e: TokenmillError) => void;
}

type WorkerReply = { id?: number; ok?: boolean; text?: string; message?: string; ready?: boolean; fatal?: string };

let rendererEnv: NodeJS.ProcessEnv | undefined;

/**
 * The environment renderer processes start with, set by the composition root (src/cli/program.ts
 * passes its own less NODE_OPTIONS, whose preloads and inspector flags are the parent's business);
 * undefined = the parent's environment as it is. Applies to renderers started afterwards.
 */
export function configureChatTemplateRenderer(opts: { readonly env?: NodeJS.ProcessEnv }): void {
  rendererEnv = opts.env;
}

/** One child process rendering requests one at a time; restarted after a timeout or a crash. */
export class ChatTemplateRenderer {
  private worker: Renderer | null = null;
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
      return Promise.reject(
        new TokenmillError('server_overloaded', why, {
          details: { retryAfterSeconds: 1 },
        }),
      );
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
    if (w) await kill(w);
  }

  /** The renderer process's pid while one runs (tests kill it mid-render). */
  get pid(): number | null {
    return this.worker?.pid ?? null;
  }

  private spawn(): Renderer {
    // spawn, not fork: the parent's execArgv (--import tsx, inspector flags) must not carry over.
    // The command line's --max-old-space-size wins over any in NODE_OPTIONS, so the cap holds either way.
    const jinjaUrl = import.meta.resolve('@huggingface/jinja');
    const w = spawn(process.execPath, [`--max-old-space-size=${RENDERER_HEAP_MB}`, '-e', WORKER_SOURCE, jinjaUrl], {
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      serialization: 'advanced', // structured clone, as postMessage to a worker would
      ...(rendererEnv !== undefined ? { env: rendererEnv } : {}),
    });
    this.ready = false; // stays referenced until the first render finishes: it is spawned for one
    w.on('message', (m: WorkerReply) => this.onMessage(w, m));
    w.on('error', (e) => this.onWorkerDeath(w, `chat template renderer failed: ${e.message}`));
    w.on('exit', (code, signal) => {
      this.onWorkerDeath(w, `chat template renderer exited (${signal ?? `code ${code}`}; out of memory or killed)`);
    });
    return w;
  }

  private pump(): void {
    if (this.current || this.queue.length === 0 || this.closed) return;
    if (!this.worker) this.worker = this.spawn();
    if (!this.ready) return; // resumes on the ready message
    const p = this.queue.shift()!;
    this.current = p;
    setRef(this.worker, true);
    this.timer = setTimeout(() => this.onTimeout(p), p.timeoutMs);
    try {
      this.worker.send({ id: p.id, template: p.template, context: p.context });
    } catch (e) {
      // The context could not be cloned (functions, symbols): fail this render only.
      this.finish();
      p.reject(new TokenmillError('chat_template_error', `chat template context cannot be sent to the renderer: ${(e as Error).message}`));
      this.pump();
    }
  }

  private onMessage(w: Renderer, m: WorkerReply): void {
    if (w !== this.worker) return;
    if (m.ready) {
      this.ready = true;
      this.pump();
      return;
    }
    if (m.fatal !== undefined) {
      this.failAll(`chat template worker cannot load jinja: ${m.fatal}`);
      return;
    }
    const p = this.current;
    if (!p || m.id !== p.id) return;
    this.finish();
    if (m.ok) p.resolve(m.text ?? '');
    else p.reject(new TokenmillError('chat_template_error', `chat template: ${m.message ?? 'unknown error'}`));
    this.pump();
  }

  private onTimeout(p: Pending): void {
    if (this.current !== p) return;
    // Timers run before I/O in each loop turn: after a stall of the main thread (a loaded machine),
    // the renderer's reply may already wait in the pipe. Let the poll phase read it first.
    setImmediate(() => this.expire(p));
  }

  private expire(p: Pending): void {
    if (this.current !== p) return;
    this.finish();
    const w = this.worker;
    this.worker = null; // the next render spawns a fresh renderer
    if (w) void kill(w);
    p.reject(
      new TokenmillError('chat_template_timeout', `chat template rendering exceeded ${p.timeoutMs} ms`, {
        details: { timeoutMs: p.timeoutMs },
      }),
    );
    this.pump();
  }

  private onWorkerDeath(w: Renderer, why: string): void {
    if (w !== this.worker) return;
    this.worker = null;
    // Dead before its ready message: it cannot start (bad NODE_OPTIONS, no memory). Respawning for the
    // queued renders would loop for ever; they fail, and the next render tries one fresh start.
    if (!this.ready) {
      this.failAll(`chat template renderer could not start: ${why}`);
      return;
    }
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
    if (this.worker) setRef(this.worker, false);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** An idle renderer must not keep the server's event loop alive: neither its process nor its IPC channel. */
function setRef(w: Renderer, on: boolean): void {
  const ch = w.channel as { ref(): void; unref(): void } | null | undefined;
  if (on) {
    w.ref();
    ch?.ref();
  } else {
    w.unref();
    ch?.unref();
  }
}

function kill(w: Renderer): Promise<void> {
  if (w.exitCode !== null || w.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    w.once('exit', () => resolve());
    w.ref(); // an idle renderer is unreferenced: whoever awaits its exit must keep the loop alive
    w.kill('SIGKILL');
  });
}

let shared: ChatTemplateRenderer | null = null;

/** Render with a process-wide renderer (one child process, started on first use). */
export function renderChatTemplate(template: string | null | undefined, ctx: ChatTemplateContext, timeoutMs?: number): Promise<string> {
  shared ??= new ChatTemplateRenderer();
  return shared.render(template, ctx, timeoutMs);
}

/** Pick a named template: `name` when given (chat_template_missing if absent), else 'default'. */
export function selectChatTemplate(templates: Readonly<Record<string, string>>, name?: string): string | null {
  if (name !== undefined) {
    const t = templates[name];
    if (t === undefined)
      throw new TokenmillError(
        'chat_template_missing',
        `no chat template named "${name}" (have: ${Object.keys(templates).join(', ') || 'none'})`,
      );
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
export function renderChat(
  tok: Pick<ModelTokenizer, 'chatTemplates' | 'config'>,
  messages: readonly ChatMessage[],
  opts: RenderChatOptions = {},
): Promise<string> {
  let template: string | null;
  try {
    template = opts.template ?? selectChatTemplate(tok.chatTemplates, opts.templateName);
  } catch (e) {
    return Promise.reject(e);
  }
  const ctx: ChatTemplateContext = {
    messages,
    addGenerationPrompt: opts.addGenerationPrompt ?? true,
    bosToken: tok.config.bosToken,
    eosToken: tok.config.eosToken,
    extra: opts.extra,
  };
  return opts.renderer ? opts.renderer.render(template, ctx, opts.timeoutMs) : renderChatTemplate(template, ctx, opts.timeoutMs);
}
