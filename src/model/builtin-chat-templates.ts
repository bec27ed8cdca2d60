// Built-in chat templates for `--chat-template NAME` (serve, generate, random-model), for models whose
// tokenizer_config.json has none. As vLLM's flag, the value may also be a Jinja file or the template
// itself written inline. The templates are the families' published ones (Llama 2 and Llama 3 as in
// their tokenizer_config.json; ChatML as Qwen/others write it) plus a plain "role: content" one.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { TokenmillError } from '../util/errors.js';
import { CHATML_TEMPLATE } from './convert/synthetic-tokenizer.js';

const LLAMA2_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  '{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}' +
  "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + " +
  "message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + " +
  "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + " +
  'content %}{% endif %}' +
  "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** "system: ...\nuser: ...\nassistant:": for base models and tokenizers without special tokens. */
const PLAIN_TEMPLATE =
  "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

export const BUILTIN_CHAT_TEMPLATES: Readonly<Record<string, string>> = {
  chatml: CHATML_TEMPLATE,
  llama2: LLAMA2_TEMPLATE,
  llama3: LLAMA3_TEMPLATE,
  plain: PLAIN_TEMPLATE,
};

export interface ResolvedChatTemplate {
  readonly template: string;
  /** 'builtin:NAME', 'file:PATH' or 'inline'. */
  readonly source: string;
}

/** --chat-template VALUE: a built-in name, a file holding a Jinja template, or an inline template. */
export function resolveChatTemplate(value: string): ResolvedChatTemplate {
  const builtin = BUILTIN_CHAT_TEMPLATES[value];
  if (builtin !== undefined && Object.hasOwn(BUILTIN_CHAT_TEMPLATES, value)) return { template: builtin, source: `builtin:${value}` };
  if (existsSync(value) && statSync(value).isFile()) {
    let text: string;
    try {
      text = readFileSync(value, 'utf8');
    } catch (e) {
      throw new TokenmillError('io_error', `--chat-template ${value}: ${(e as Error).message}`, { cause: e, param: '--chat-template' });
    }
    if (text.trim() === '')
      throw new TokenmillError('invalid_argument', `--chat-template ${value}: the file is empty`, { param: '--chat-template' });
    return { template: text, source: `file:${value}` };
  }
  if (value.includes('{{') || value.includes('{%')) return { template: value, source: 'inline' };
  throw new TokenmillError(
    'invalid_argument',
    `--chat-template ${value}: not a file, and not a built-in name (${Object.keys(BUILTIN_CHAT_TEMPLATES).join(', ')})`,
    { param: '--chat-template' },
  );
}
