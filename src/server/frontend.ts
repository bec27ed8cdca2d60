// ModelFrontend: everything the server needs from the model's text side (tokenizer + chat
// template) behind one small interface, so route tests can use a deterministic fake. The real one
// (model-frontend.ts) wraps src/model/tokenizer.ts and src/model/chat-template.ts.

export interface ChatMessage {
  readonly role: string;
  /** Plain text; multi-part content is flattened to its text parts by the server. */
  readonly content: string;
  readonly name?: string;
  /** Assistant calls, with arguments parsed to objects (as HF templates expect). */
  readonly tool_calls?: readonly { id: string; type: 'function'; function: { name: string; arguments: unknown } }[];
  /** Which call a tool message answers. */
  readonly tool_call_id?: string;
  readonly reasoning_content?: string;
}

export interface RenderChatOptions {
  readonly addGenerationPrompt: boolean;
  /** Tools as OpenAI objects ({type: 'function', function: {...}}), for templates that render them. */
  readonly tools?: readonly Record<string, unknown>[];
  /** chat_template_kwargs: extra template variables (enable_thinking, ...). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface ModelFrontend {
  /**
   * Token ids for text. Completions encode with addSpecialTokens (BOS as the model expects); chat
   * prompts come from the template, which writes its own special tokens, so they encode without.
   */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]>;
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): Promise<string>;
  /** The model's own chat template applied to messages (a prompt string with special tokens). */
  renderChat(messages: readonly ChatMessage[], opts: RenderChatOptions): Promise<string>;
  /** The chat template's source (tool-call / reasoning parsers are recognised from it). */
  readonly chatTemplate?: string | null;
  /** Token id of text when the vocabulary has it as one added token (markers such as <tool_call>). */
  singleTokenId?(text: string): number | null;
  /** Text of one token for logprobs (raw piece, special tokens included). */
  tokenText(id: number): Promise<string>;
  /**
   * The token's own bytes for logprobs `bytes` (a byte-level or <0xNN> token may be part of a UTF-8
   * character: its text then shows U+FFFD, its bytes must not).
   */
  tokenBytes(id: number): Promise<readonly number[]>;
  readonly eosTokenIds: readonly number[];
  readonly vocabSize: number;
}
