// A byte-level ModelFrontend for server tests: the tokenizer and chat template only (ids 0..255 are
// bytes, then BOS and EOS), in front of the real engine on the tiny byte model (real-engine.ts).
// There is no fake engine: faults are injected below the real one (ModelFault).

import type { ChatMessage, ModelFrontend } from '../../src/server/frontend.js';

export const BOS = 256;
export const EOS = 257;

export class FakeFrontend implements ModelFrontend {
  readonly eosTokenIds = [EOS];
  readonly vocabSize = 258;
  async encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]> {
    const ids = [...Buffer.from(text, 'utf8')];
    return opts?.addSpecialTokens ? [BOS, ...ids] : ids;
  }
  async decode(ids: readonly number[]): Promise<string> {
    return Buffer.from(ids.filter((i) => i < 256)).toString('utf8');
  }
  async renderChat(messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }): Promise<string> {
    return messages.map((m) => `<${m.role}>${m.content}\n`).join('') + (opts.addGenerationPrompt ? '<assistant>' : '');
  }
  async tokenText(id: number): Promise<string> {
    return id === BOS ? '<s>' : id === EOS ? '</s>' : String.fromCharCode(id);
  }
  async tokenBytes(id: number): Promise<readonly number[]> {
    return [...Buffer.from(await this.tokenText(id), 'utf8')];
  }
}
