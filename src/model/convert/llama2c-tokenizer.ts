// llama2.c tokenizer.bin -> SentencePiece pieces (see ../shared/models/README.md for the format):
// int32 max_token_length, then per token: f32 score, int32 length, raw UTF-8 bytes. The vocab size
// comes from the model header. Validates every length against the file; errors are llama2c_invalid.
import { TokenmillError } from '../../util/errors.js';
import { parseByteToken, SPM_SPACE } from '../tokenizer-bytes.js';
import type { SpmPiece } from './spm-tokenizer.js';

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

function bad(file: string, why: string): TokenmillError {
  return new TokenmillError('llama2c_invalid', `${file}: ${why}`, { details: { file } });
}

/** Parse tokenizer.bin bytes into pieces: ▁ for space, <unk>/<s>/</s> at ids 0/1/2, <0xNN> as bytes. */
export function parseLlama2cTokenizer(buf: Uint8Array, vocabSize: number, file = 'tokenizer.bin'): SpmPiece[] {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < 3) throw bad(file, `vocab size ${vocabSize} is too small`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 4) throw bad(file, 'shorter than its 4-byte header');
  const maxTokenLength = dv.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1024) throw bad(file, `max_token_length ${maxTokenLength} is out of range`);
  const pieces: SpmPiece[] = [];
  let off = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (off + 8 > buf.byteLength) throw bad(file, `ends at token ${id} of ${vocabSize} (vocab size from the model header)`);
    const score = dv.getFloat32(off, true);
    const len = dv.getInt32(off + 4, true);
    off += 8;
    if (len < 0 || len > maxTokenLength) throw bad(file, `token ${id} has length ${len} (max_token_length ${maxTokenLength})`);
    if (off + len > buf.byteLength) throw bad(file, `token ${id} runs past the end of the file`);
    if (!Number.isFinite(score)) throw bad(file, `token ${id} has a non-finite score`);
    let text: string;
    try {
      text = fatalUtf8.decode(buf.subarray(off, off + len));
    } catch {
      throw bad(file, `token ${id} is not valid UTF-8`);
    }
    off += len;
    pieces.push(toPiece(id, text, score));
  }
  if (off !== buf.byteLength) {
    throw bad(file, `has ${buf.byteLength - off} bytes after ${vocabSize} tokens: the vocab size does not match the model header`);
  }
  return pieces;
}

function toPiece(id: number, text: string, score: number): SpmPiece {
  // llama2.c spells the specials "<unk>", "\n<s>\n", "\n</s>\n".
  if (id === 0) return { piece: '<unk>', score: 0, type: 'unknown' };
  if (id === 1) return { piece: '<s>', score: 0, type: 'control' };
  if (id === 2) return { piece: '</s>', score: 0, type: 'control' };
  if (parseByteToken(text) !== null) return { piece: text.toUpperCase().replace('0X', '0x'), score, type: 'byte' };
  return { piece: text.replaceAll(' ', SPM_SPACE), score, type: 'normal' };
}
