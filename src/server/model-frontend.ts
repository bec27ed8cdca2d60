// The real ModelFrontend: a model directory's tokenizer (model/tokenizer.ts) and its own chat
// template (model/chat-template.ts, rendered in a worker under a time limit). Templates sent in
// requests are never used. Also the incremental detokenizer factory the engine needs.

import { IncrementalDetokenizer } from '../engine/detokenizer.js';
import type { DetokenizerFactory } from '../engine/output-processor.js';
import { ChatTemplateRenderer, DEFAULT_CHAT_TEMPLATE_TIMEOUT_MS, selectChatTemplate } from '../model/chat-template.js';
import type { ModelTokenizer } from '../model/tokenizer.js';
import type { ChatMessage, ModelFrontend } from './frontend.js';

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
  private readonly template: string | null;
  private readonly renderer: ChatTemplateRenderer;

  constructor(readonly tokenizer: ModelTokenizer, opts: TokenizerFrontendOptions) {
    this.eosTokenIds = opts.eosTokenIds;
    this.vocabSize = opts.vocabSize;
    this.template = opts.chatTemplate ?? selectChatTemplate(tokenizer.chatTemplates);
    this.renderer = new ChatTemplateRenderer(opts.templateTimeoutMs ?? DEFAULT_CHAT_TEMPLATE_TIMEOUT_MS);
  }

  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]> {
    return this.tokenizer.encode(text, { addSpecialTokens: opts?.addSpecialTokens ?? true });
  }

  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): Promise<string> {
    return this.tokenizer.decode(ids, { skipSpecialTokens: opts?.skipSpecialTokens ?? true });
  }

  renderChat(messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }): Promise<string> {
    const cfg = this.tokenizer.config;
    return this.renderer.render(this.template, {
      messages: messages.map((m) => ({ ...m })),
      addGenerationPrompt: opts.addGenerationPrompt,
      bosToken: cfg.bosToken,
      eosToken: cfg.eosToken,
    });
  }

  async tokenText(id: number): Promise<string> {
    if (this.tokenizer.isSpecial(id)) return this.tokenizer.tokenString(id) ?? '';
    return utf8.decode(this.tokenizer.tokenBytes(id));
  }

  async tokenBytes(id: number): Promise<readonly number[]> {
    if (this.tokenizer.isSpecial(id)) return [...new TextEncoder().encode(this.tokenizer.tokenString(id) ?? '')];
    return [...this.tokenizer.tokenBytes(id)];
  }

  /** Per-choice incremental detokenizer for the engine (skips special tokens, like OpenAI). */
  detokenizerFactory(): DetokenizerFactory {
    return (promptTokenIds) => new IncrementalDetokenizer(this.tokenizer, { promptTokenIds });
  }

  close(): Promise<void> {
    return this.renderer.close();
  }
}
