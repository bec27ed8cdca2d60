// writeSyntheticTokenizer: a self-made, deterministic byte-level BPE tokenizer.json +
// tokenizer_config.json (ChatML chat template) for seeded random-weight models. No network, no
// randomness: merges are learned from an embedded paragraph; the vocab is padded with syllable words.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenmillError } from '../../util/errors.js';
import { byteLevelAlphabet, bytesToByteLevel } from '../tokenizer-bytes.js';

export interface SyntheticTokenizerOptions {
  /** Write add_bos_token: true and a post-processor that prepends <s> (default false, ChatML-style). */
  readonly addBosToken?: boolean;
  /** Override the chat template (default: ChatML). */
  readonly chatTemplate?: string;
  /** model_max_length in tokenizer_config.json (default 2048). */
  readonly modelMaxLength?: number;
  /**
   * More special tokens (e.g. Mistral's [INST], [TOOL_CALLS]), given the last ids of the vocab in
   * order; the base specials keep their ids.
   */
  readonly extraSpecialTokens?: readonly string[];
  /** eos_token in tokenizer_config.json (default <|im_end|>): one of the specials. */
  readonly eosToken?: string;
}

export interface SyntheticTokenizerInfo {
  readonly vocabSize: number;
  readonly bosTokenId: number;
  /** The chat stop token (<|im_end|>) first, then </s>: use as generation_config eos_token_id. */
  readonly eosTokenIds: readonly number[];
  readonly imStartTokenId: number;
  readonly imEndTokenId: number;
  readonly numMerges: number;
}

export const SYNTHETIC_SPECIAL_TOKENS = ['<s>', '</s>', '<|im_start|>', '<|im_end|>'] as const;
const NUM_SPECIAL = SYNTHETIC_SPECIAL_TOKENS.length;
/** Smallest vocab: the specials plus one token per byte. */
export const SYNTHETIC_MIN_VOCAB = NUM_SPECIAL + 256;

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const PARAGRAPH =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her ' +
  'friends. One day, she saw a big red ball under a tree. "Can I play with the ball?" she asked her mother. ' +
  'Her mother smiled and said, "Yes, but be careful and share it with the other children." Lily ran to the ' +
  'tree and picked up the ball. It was the most beautiful ball she had ever seen. She threw it to her friend ' +
  'Tom, and Tom threw it back. They played all afternoon until the sun went down. The engine reads the model ' +
  'weights, runs one step for every token, and writes the answer: 12 tokens per second, 345 requests, 6789 ' +
  'bytes. When the day was over, Lily went home, ate her dinner and went to sleep, happy and tired.';

const WORD_RE = / ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+/gu;

/** Classic BPE training on the embedded paragraph: most frequent pair first, ties by string order. */
export function learnMerges(text: string, maxMerges: number): [string, string][] {
  const counts = new Map<string, number>();
  for (const m of text.matchAll(WORD_RE)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  const words: { syms: string[]; n: number }[] = [];
  for (const [w, n] of counts) words.push({ syms: [...bytesToByteLevel(new TextEncoder().encode(w))], n });
  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    const pairCounts = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i]! + '\u0000' + syms[i + 1]!;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + n);
      }
    }
    let best: string | null = null;
    let bestCount = 1;
    for (const [key, c] of pairCounts) {
      if (c > bestCount || (c === bestCount && best !== null && key < best)) {
        if (c >= 2) {
          best = key;
          bestCount = c;
        }
      }
    }
    if (best === null) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.syms[i]!);
      }
      w.syms = out;
    }
  }
  return merges;
}

const CONSONANTS = 'bdfghklmnprstvz';
const VOWELS = 'aeiou';

/** n -> " bako"-style word (byte-level spelled, leading Ġ): readable filler for padded vocab slots. */
function fillerWord(n: number): string {
  const numSyll = CONSONANTS.length * VOWELS.length;
  let s = '';
  let k = n;
  do {
    const syl = k % numSyll;
    s += CONSONANTS[Math.floor(syl / VOWELS.length)]! + VOWELS[syl % VOWELS.length]!;
    k = Math.floor(k / numSyll);
  } while (k > 0);
  return byteLevelAlphabet()[0x20]! + s;
}

/** tokenizer.json's `model` for a byte-level BPE without unk, dropout or byte fallback (ours and GGUF's gpt2 vocabularies). */
export function byteLevelBpeModel(vocab: Record<string, number>, merges: unknown[], ignoreMerges: boolean) {
  return {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: ignoreMerges,
    vocab,
    merges,
  };
}

function addedToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** Build the tokenizer.json object (exported for tests). */
export function buildSyntheticTokenizerJson(vocabSize: number, opts: SyntheticTokenizerOptions = {}): { json: object; numMerges: number } {
  const extra = opts.extraSpecialTokens ?? [];
  const minVocab = SYNTHETIC_MIN_VOCAB + extra.length;
  if (!Number.isInteger(vocabSize) || vocabSize < minVocab) {
    throw new TokenmillError('invalid_argument', `synthetic tokenizer: vocabSize must be an integer >= ${minVocab}, got ${vocabSize}`);
  }
  const specials = [...SYNTHETIC_SPECIAL_TOKENS, ...extra];
  if (new Set(specials).size !== specials.length)
    throw new TokenmillError('invalid_argument', 'synthetic tokenizer: special tokens repeat');
  const firstExtra = vocabSize - extra.length;
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  SYNTHETIC_SPECIAL_TOKENS.forEach((t, i) => {
    vocab[t] = i;
  });
  const alpha = byteLevelAlphabet();
  for (let b = 0; b < 256; b++) vocab[alpha[b]!] = NUM_SPECIAL + b;
  let next = SYNTHETIC_MIN_VOCAB;
  const merges = learnMerges(PARAGRAPH, firstExtra - SYNTHETIC_MIN_VOCAB);
  for (const [a, b] of merges) {
    if (vocab[a + b] === undefined) vocab[a + b] = next++;
  }
  for (let n = 0; next < firstExtra; n++) {
    const w = fillerWord(n);
    if (vocab[w] === undefined) vocab[w] = next++;
  }
  extra.forEach((t, i) => {
    vocab[t] = firstExtra + i;
  });
  const addBos = opts.addBosToken ?? false;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
  const postProcessor = addBos
    ? {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] } },
      }
    : byteLevel;
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...SYNTHETIC_SPECIAL_TOKENS.map((t, i) => addedToken(i, t)), ...extra.map((t, i) => addedToken(firstExtra + i, t))],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: postProcessor,
    decoder: byteLevel,
    model: byteLevelBpeModel(vocab, merges, false),
  };
  return { json, numMerges: merges.length };
}

/** Write tokenizer.json + tokenizer_config.json into dir (created if needed). */
export function writeSyntheticTokenizer(dir: string, vocabSize: number, opts: SyntheticTokenizerOptions = {}): SyntheticTokenizerInfo {
  const { json, numMerges } = buildSyntheticTokenizerJson(vocabSize, opts);
  const addedTokensDecoder: Record<string, object> = {};
  const extra = opts.extraSpecialTokens ?? [];
  const ids = [...SYNTHETIC_SPECIAL_TOKENS.map((_, i) => i), ...extra.map((_, i) => vocabSize - extra.length + i)];
  [...SYNTHETIC_SPECIAL_TOKENS, ...extra].forEach((t, k) => {
    const { id: _id, ...rest } = addedToken(ids[k]!, t);
    addedTokensDecoder[String(ids[k])] = rest;
  });
  const eos = opts.eosToken ?? '<|im_end|>';
  const eosAt = [...SYNTHETIC_SPECIAL_TOKENS, ...extra].indexOf(eos);
  if (eosAt < 0) throw new TokenmillError('invalid_argument', `synthetic tokenizer: eosToken ${eos} is not a special token`);
  const config = {
    add_bos_token: opts.addBosToken ?? false,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: '<s>',
    eos_token: eos,
    pad_token: '</s>',
    unk_token: null,
    chat_template: opts.chatTemplate ?? CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: opts.modelMaxLength ?? 2048,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  } catch (e) {
    throw new TokenmillError('io_error', `writing synthetic tokenizer to ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const eosTokenIds = opts.eosToken === undefined ? [3, 1] : [ids[eosAt]!];
  return { vocabSize, bosTokenId: 0, eosTokenIds, imStartTokenId: 2, imEndTokenId: 3, numMerges };
}
