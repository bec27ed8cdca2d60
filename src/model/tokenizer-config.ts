// Reads tokenizer_config.json (and chat_template.jinja / chat_template.json when present) into a
// normalized TokenizerConfig: bos/eos token strings, add_bos_token, named chat templates.
// Never loads the tokenizer itself; errors are tokenizer_invalid.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenmillError } from '../util/errors.js';

export interface TokenizerConfig {
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  /** add_bos_token as written; null when the file does not say. */
  readonly addBosToken: boolean | null;
  readonly addEosToken: boolean;
  /** Named chat templates; the unnamed one (a plain string in the file) is 'default'. */
  readonly chatTemplates: Readonly<Record<string, string>>;
  readonly modelMaxLength: number | null;
  readonly tokenizerClass: string | null;
  /** The file the fields came from (for error messages); absent for defaults. */
  readonly sourceFile?: string;
  /** False when the directory has no tokenizer_config.json (everything above is a default). */
  readonly fromFile: boolean;
}

/** A token field is a string, an AddedToken dict {content: ...}, or null. */
function tokenField(v: unknown, name: string, file: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  throw new TokenmillError('tokenizer_invalid', `${file}: ${name} must be a string, an object with "content", or null`);
}

/** chat_template: a string, or a list of {name, template}. */
export function parseChatTemplates(v: unknown, file: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v === 'string') return { default: v };
  if (Array.isArray(v)) {
    const out: Record<string, string> = {};
    for (const item of v) {
      const { name, template } = (item ?? {}) as { name?: unknown; template?: unknown };
      if (typeof name !== 'string' || typeof template !== 'string') {
        throw new TokenmillError('tokenizer_invalid', `${file}: chat_template list entries need string "name" and "template"`);
      }
      out[name] = template;
    }
    return out;
  }
  throw new TokenmillError('tokenizer_invalid', `${file}: chat_template must be a string or a list of {name, template}`);
}

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenmillError('tokenizer_invalid', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseTokenizerJsonObject(text, path);
}

/** Parse a tokenizer file's text that must hold a JSON object; `path` labels the tokenizer_invalid errors. */
export function parseTokenizerJsonObject(text: string, path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TokenmillError('tokenizer_invalid', `${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TokenmillError('tokenizer_invalid', `${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Parse the config object (exported for tests). */
export function parseTokenizerConfig(raw: Record<string, unknown>, file = 'tokenizer_config.json'): TokenizerConfig {
  const addBos = raw.add_bos_token;
  if (addBos !== undefined && addBos !== null && typeof addBos !== 'boolean') {
    throw new TokenmillError('tokenizer_invalid', `${file}: add_bos_token must be a boolean`);
  }
  const maxLen = raw.model_max_length;
  return {
    bosToken: tokenField(raw.bos_token, 'bos_token', file),
    eosToken: tokenField(raw.eos_token, 'eos_token', file),
    padToken: tokenField(raw.pad_token, 'pad_token', file),
    unkToken: tokenField(raw.unk_token, 'unk_token', file),
    addBosToken: typeof addBos === 'boolean' ? addBos : null,
    addEosToken: raw.add_eos_token === true,
    chatTemplates: parseChatTemplates(raw.chat_template, file),
    // HF writes a huge sentinel (1e30) when there is no limit.
    modelMaxLength: typeof maxLen === 'number' && Number.isFinite(maxLen) && maxLen < 1e15 ? maxLen : null,
    tokenizerClass: typeof raw.tokenizer_class === 'string' ? raw.tokenizer_class : null,
    sourceFile: file,
    fromFile: true,
  };
}

/** Load dir/tokenizer_config.json (optional: an empty config when absent) plus separate template files. */
export function loadTokenizerConfig(dir: string): TokenizerConfig {
  const path = join(dir, 'tokenizer_config.json');
  const cfg = existsSync(path) ? parseTokenizerConfig(readJson(path), path) : { ...parseTokenizerConfig({}, path), fromFile: false };
  if (Object.keys(cfg.chatTemplates).length > 0) return cfg;
  // Newer HF checkpoints keep the template outside tokenizer_config.json.
  const jinjaPath = join(dir, 'chat_template.jinja');
  if (existsSync(jinjaPath)) return { ...cfg, chatTemplates: { default: readFileSync(jinjaPath, 'utf8') } };
  const jsonPath = join(dir, 'chat_template.json');
  if (existsSync(jsonPath)) return { ...cfg, chatTemplates: parseChatTemplates(readJson(jsonPath).chat_template, jsonPath) };
  return cfg;
}
