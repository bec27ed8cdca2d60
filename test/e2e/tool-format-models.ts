// Test helper: tiny random models in the two tool-call formats ../shared has no template or
// tokenizer for, served with the real Engine on 127.0.0.1:0.
// - llama31: the real Llama 3 tokenizer with the two reserved ids Llama 3.1 renamed (128008
//   <|eom_id|>, 128010 <|python_tag|>), stop ids 128001/128008/128009 as 3.1's generation config,
//   and our Llama-3.1-style tool template (test/fixtures/chat-templates/llama31-tools.jinja).
// - mistral: the synthetic byte-level tokenizer with Mistral's control tokens as specials
//   ([INST], [AVAILABLE_TOOLS], [TOOL_CALLS], [TOOL_RESULTS], ...), eos </s>, and our Mistral-style
//   template (mistral-tools.jinja).
// template 'plain' serves the model with a template that has no tool format (for --tool-call-parser).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSyntheticTokenizer } from '../../src/model/convert/synthetic-tokenizer.js';
import { makeTinyModel } from '../../src/model/random-model.js';
import { sharedPath } from '../tokenizer/shared-models.js';
import { serveTinyModel, type Served } from './tiny-qwen3-server.js';

export type ToolFormat = 'llama31' | 'mistral';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'chat-templates');

export const MISTRAL_SPECIALS = [
  '[INST]',
  '[/INST]',
  '[AVAILABLE_TOOLS]',
  '[/AVAILABLE_TOOLS]',
  '[TOOL_RESULTS]',
  '[/TOOL_RESULTS]',
  '[TOOL_CALLS]',
  '[ARGS]',
  '[CALL_ID]',
  '[SYSTEM_PROMPT]',
  '[/SYSTEM_PROMPT]',
] as const;
const MISTRAL_VOCAB = 1024;
/** Id of [TOOL_CALLS] in the synthetic Mistral vocabulary (the extras take the last ids in order). */
export const MISTRAL_TOOL_CALLS_ID = MISTRAL_VOCAB - MISTRAL_SPECIALS.length + MISTRAL_SPECIALS.indexOf('[TOOL_CALLS]');
export const LLAMA31_PYTHON_TAG_ID = 128010;
const PLAIN_TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}";

export const fixtureTemplate = (f: ToolFormat): string => readFileSync(join(FIXTURES, `${f}-tools.jinja`), 'utf8');

/** A tokenizer directory for the format (caller removes it). */
function tokenizerDir(f: ToolFormat, template: string): string {
  const dir = mkdtempSync(join(tmpdir(), `tm-${f}-tok-`));
  if (f === 'mistral') {
    writeSyntheticTokenizer(dir, MISTRAL_VOCAB, { extraSpecialTokens: MISTRAL_SPECIALS, eosToken: '</s>', chatTemplate: template });
    return dir;
  }
  const renamed: Record<number, string> = { 128008: '<|eom_id|>', [LLAMA31_PYTHON_TAG_ID]: '<|python_tag|>' };
  const tok = JSON.parse(readFileSync(sharedPath('llama3-tokenizer/tokenizer.json'), 'utf8')) as {
    added_tokens: { id: number; content: string }[];
  };
  for (const t of tok.added_tokens) if (renamed[t.id] !== undefined) t.content = renamed[t.id]!;
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok));
  const cfg = JSON.parse(readFileSync(sharedPath('llama3-tokenizer/tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const decoder = cfg.added_tokens_decoder as Record<string, { content: string }>;
  for (const [id, content] of Object.entries(renamed)) decoder[id]!.content = content;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...cfg, chat_template: template, eos_token: '<|eot_id|>' }));
  return dir;
}

export async function serveToolFormat(
  f: ToolFormat,
  opts: { template?: 'fixture' | 'plain'; toolCallParser?: string; seed?: number } = {},
): Promise<Served> {
  const tokDir = tokenizerDir(f, opts.template === 'plain' ? PLAIN_TEMPLATE : fixtureTemplate(f));
  try {
    const model =
      f === 'llama31'
        ? makeTinyModel(tokDir, {
            preset: 'tiny-llama3',
            seed: opts.seed ?? 5,
            patch: { num_hidden_layers: 1, max_position_embeddings: 2048 },
          })
        : makeTinyModel(tokDir, {
            preset: 'tiny-llama',
            seed: opts.seed ?? 5,
            patch: { num_hidden_layers: 1, max_position_embeddings: 2048 },
          });
    if (f === 'llama31') {
      const p = join(model.dir, 'generation_config.json');
      writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), eos_token_id: [128001, 128008, 128009] }));
    }
    return await serveTinyModel(model, opts.toolCallParser !== undefined ? { toolCallParser: opts.toolCallParser } : {});
  } finally {
    rmSync(tokDir, { recursive: true, force: true });
  }
}
