// SentencePiece-BPE vocabulary (pieces + scores + types) -> HF tokenizer.json in the shape of
// LlamaTokenizerFast (legacy): Prepend("▁") + Replace(" ", "▁") normalizer, BPE with byte_fallback
// and merges derived from piece scores, decoder Replace/ByteFallback/Fuse/Strip. Pure data building.
import { TokenmillError } from '../../util/errors.js';
import { SPM_SPACE } from '../tokenizer-bytes.js';

export type SpmPieceType = 'normal' | 'unknown' | 'control' | 'byte' | 'user_defined' | 'unused';

export interface SpmPiece {
  readonly piece: string;
  readonly score: number;
  readonly type: SpmPieceType;
}

export interface SpmSpecialIds {
  readonly unkId: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
}

/**
 * Merges as HF's SentencePieceExtractor derives them: every split (left, right) of a normal piece
 * whose halves are both pieces, ordered by the merged piece's score (descending, stable), then by
 * the halves' ids. SentencePiece BPE merges the pair whose result scores highest: same order.
 */
export function spmMerges(pieces: readonly SpmPiece[]): [string, string][] {
  const idOf = new Map<string, number>();
  pieces.forEach((p, i) => {
    if (!idOf.has(p.piece)) idOf.set(p.piece, i);
  });
  const entries: { l: string; r: string; score: number; li: number; ri: number; order: number }[] = [];
  pieces.forEach((p, i) => {
    if (p.type !== 'normal' && p.type !== 'user_defined') return;
    const chars = [...p.piece]; // split on code points, never inside a surrogate pair
    const local: typeof entries = [];
    for (let k = 1; k < chars.length; k++) {
      const l = chars.slice(0, k).join('');
      const r = chars.slice(k).join('');
      const li = idOf.get(l);
      const ri = idOf.get(r);
      if (li === undefined || ri === undefined) continue;
      const lt = pieces[li]!.type;
      const rt = pieces[ri]!.type;
      if ((lt !== 'normal' && lt !== 'user_defined') || (rt !== 'normal' && rt !== 'user_defined')) continue;
      local.push({ l, r, score: p.score, li, ri, order: i });
    }
    local.sort((a, b) => a.li - b.li || a.ri - b.ri);
    entries.push(...local);
  });
  // Stable: equal scores keep vocabulary order.
  entries.sort((a, b) => b.score - a.score || a.order - b.order);
  return entries.map((e) => [e.l, e.r]);
}

function addedToken(id: number, content: string, special: boolean) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

export interface SpmTokenizerOptions extends SpmSpecialIds {
  /** Post-processor prepends BOS (LlamaTokenizerFast default: true). */
  readonly addBos: boolean;
}

/** Build the tokenizer.json object. */
export function buildSpmTokenizerJson(pieces: readonly SpmPiece[], opts: SpmTokenizerOptions): object {
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  pieces.forEach((p, i) => {
    if (vocab[p.piece] !== undefined) {
      throw new TokenmillError(
        'tokenizer_invalid',
        `SentencePiece vocabulary has piece ${JSON.stringify(p.piece)} twice (ids ${vocab[p.piece]} and ${i})`,
      );
    }
    vocab[p.piece] = i;
  });
  const unk = pieces[opts.unkId];
  if (!unk) throw new TokenmillError('tokenizer_invalid', `unk id ${opts.unkId} is outside the vocabulary`);
  const added = pieces.flatMap((p, i) =>
    p.type === 'control' || p.type === 'unknown'
      ? [addedToken(i, p.piece, true)]
      : p.type === 'user_defined'
        ? [addedToken(i, p.piece, false)]
        : [],
  );
  const bos = opts.bosId !== null ? pieces[opts.bosId]?.piece : undefined;
  const seqA = { Sequence: { id: 'A', type_id: 0 } };
  const seqB = { Sequence: { id: 'B', type_id: 1 } };
  const postProcessor =
    opts.addBos && bos !== undefined
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, seqA],
          pair: [{ SpecialToken: { id: bos, type_id: 0 } }, seqA, { SpecialToken: { id: bos, type_id: 1 } }, seqB],
          special_tokens: { [bos]: { id: bos, ids: [opts.bosId], tokens: [bos] } },
        }
      : null;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPM_SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: postProcessor,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPM_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk.piece,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: spmMerges(pieces),
    },
  };
}

/** tokenizer_config.json for a converted Llama-style SentencePiece vocabulary. */
export function buildSpmTokenizerConfig(
  pieces: readonly SpmPiece[],
  opts: SpmTokenizerOptions & { modelMaxLength: number; chatTemplate?: string },
): object {
  const name = (id: number | null) => (id === null ? null : (pieces[id]?.piece ?? null));
  const decoderEntries: Record<string, object> = {};
  pieces.forEach((p, i) => {
    if (p.type === 'control' || p.type === 'unknown' || p.type === 'user_defined') {
      decoderEntries[String(i)] = {
        content: p.piece,
        lstrip: false,
        normalized: false,
        rstrip: false,
        single_word: false,
        special: p.type !== 'user_defined',
      };
    }
  });
  return {
    add_bos_token: opts.addBos,
    add_eos_token: false,
    added_tokens_decoder: decoderEntries,
    bos_token: name(opts.bosId),
    eos_token: name(opts.eosId),
    unk_token: name(opts.unkId),
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: opts.modelMaxLength,
    tokenizer_class: 'LlamaTokenizerFast',
    ...(opts.chatTemplate !== undefined ? { chat_template: opts.chatTemplate } : {}),
  };
}
