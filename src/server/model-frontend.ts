// The real ModelFrontend: a model directory's tokenizer (model/tokenizer.ts) and its own chat
// template (model/chat-template.ts, rendered in a worker under a time limit). Templates sent in
// requests are never used. Also the incremental detokenizer factory the engine needs.

import { IncrementalDetokenizer } from '../engine/detokenizer.js';
import type { DetokenizerFactory } from '../engine/output-processor.js';
import { ChatTemplateRenderer, DEFAULT_CHAT_TEMPLATE_TIMEOUT_MS, selectChatTemplate } from '../model/chat-template.js';
import type { ModelTokenizer } from '../model/tokenizer.js';
import { TokenmillError } from '../util/errors.js';
import type { ChatMessage, ModelFrontend, RenderChatOptions } from './frontend.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

export interface TokenizerFrontendOptions {
  /** End-of-sequence ids (config.json + generation_config.json). */
  readonly eosTokenIds: readonly number[];
  /** The model's vocabulary (embedding rows); may exceed the tokenizer's. */
  readonly vocabSize: number;
  readonly templateTimeoutMs?: number;
  /** A chat template that replaces the tokenizer's (serve --chat-template); default the tokenizer's own. */
  readonly chatTemplate?: string;
}

export class TokenizerFrontend implements ModelFrontend {
  readonly eosTokenIds: readonly number[];
  readonly vocabSize: number;
  readonly chatTemplate: string | null;
  private readonly renderer: ChatTemplateRenderer;
  private maxTextTokens: number | null = null;

  constructor(
    readonly tokenizer: ModelTokenizer,
    opts: TokenizerFrontendOptions,
  ) {
    this.eosTokenIds = opts.eosTokenIds;
    this.vocabSize = opts.vocabSize;
    this.chatTemplate = opts.chatTemplate ?? selectChatTemplate(tokenizer.chatTemplates);
    this.renderer = new ChatTemplateRenderer(opts.templateTimeoutMs ?? DEFAULT_CHAT_TEMPLATE_TIMEOUT_MS);
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplate !== null;
  }

  /**
   * Refuse, before tokenizing, any text that cannot fit maxTokens (the engine's context): tokenizing
   * a body-sized text only to reject it holds hundreds of MB of tokenizer memory (token-bound.ts).
   */
  limitTextTokens(maxTokens: number): void {
    this.maxTextTokens = maxTokens;
  }

  async encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]> {
    const max = this.maxTextTokens;
    if (max !== null && text.length > max) {
      const per = this.tokenizer.maxUnitsPerToken();
      const least = per === null ? 0 : Math.ceil(text.length / per);
      if (least > max) {
        throw new TokenmillError(
          'context_length_exceeded',
          `This model's maximum context length is ${max} tokens. ` +
            `However, the text is ${text.length} characters, so at least ${least} tokens ` +
            `(a token of this tokenizer covers at most ${per}). Please shorten it.`,
        );
      }
    }
    return this.tokenizer.encode(text, { addSpecialTokens: opts?.addSpecialTokens ?? true });
  }

  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): Promise<string> {
    return this.tokenizer.decode(ids, { skipSpecialTokens: opts?.skipSpecialTokens ?? true });
  }

  renderChat(messages: readonly ChatMessage[], opts: RenderChatOptions): Promise<string> {
    const cfg = this.tokenizer.config;
    // Request variables first: the template's own (messages, tools, bos/eos) always win.
    const extra: Record<string, unknown> = { ...(opts.extra ?? {}) };
    if (opts.tools && opts.tools.length > 0) extra.tools = opts.tools;
    else delete extra.tools;
    return this.renderer.render(this.chatTemplate, {
      messages: messages.map((m) => ({ ...m })),
      addGenerationPrompt: opts.addGenerationPrompt,
      bosToken: cfg.bosToken,
      eosToken: cfg.eosToken,
      extra,
    });
  }

  singleTokenId(text: string): number | null {
    return this.tokenizer.addedTokenId(text);
  }

  async tokenText(id: number): Promise<string> {
    if (this.tokenizer.isSpecial(id)) return this.tokenizer.tokenString(id) ?? '';
    return utf8.decode(this.tokenizer.tokenBytes(id));
  }

  async tokenBytes(id: number): Promise<readonly number[]> {
    if (this.tokenizer.isSpecial(id)) return [...new TextEncoder().encode(this.tokenizer.tokenString(id) ?? '')];
    return [...this.tokenizer.tokenBytes(id)];
  }

  /**
   * Per-choice incremental detokenizer for the engine: skips special tokens, like OpenAI, except
   * those a request's output parser must see (params.keepSpecialTokenIds, e.g. [TOOL_CALLS]).
   */
  detokenizerFactory(): DetokenizerFactory {
    return (promptTokenIds, params) =>
      new IncrementalDetokenizer(this.tokenizer, { promptTokenIds, keepSpecialTokenIds: params.keepSpecialTokenIds });
  }

  close(): Promise<void> {
    return this.renderer.close();
  }
}
