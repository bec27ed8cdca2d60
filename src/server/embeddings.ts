// /v1/embeddings body -> the inputs' token ids, and pooled vectors -> the OpenAI response: Matryoshka
// truncation to `dimensions` then L2 normalisation, encoded as float arrays or base64 (little-endian
// f32 bytes, what the openai client decodes). Pure functions; the route is routes-embeddings.ts.

import { TokenmillError } from '../util/errors.js';
import type { ModelFrontend } from './frontend.js';
import type { EmbeddingBody } from './schemas.js';

/** Token ids of each input: a string, a list of strings, token ids, or a list of token-id lists. */
export async function embeddingInputIds(body: EmbeddingBody, fe: ModelFrontend): Promise<number[][]> {
  const inp = body.input;
  let all: number[][];
  if (typeof inp === 'string') all = [await fe.encode(inp, { addSpecialTokens: true })];
  else if (inp.length === 0) throw new TokenmillError('invalid_request', "'input' is an empty list.", { param: 'input' });
  else if (typeof inp[0] === 'string') all = await Promise.all((inp as string[]).map((s) => fe.encode(s, { addSpecialTokens: true })));
  else if (Array.isArray(inp[0])) all = (inp as number[][]).map((ids) => [...ids]);
  else all = [[...(inp as number[])]];
  return all;
}

/** The first `dimensions` components (all when null; the route checked it against the size), scaled to unit L2 norm. */
export function finishEmbedding(pooled: Float32Array, dimensions: number | null): Float32Array {
  const d = Math.min(dimensions ?? pooled.length, pooled.length);
  const out = pooled.slice(0, d);
  let ss = 0;
  for (const x of out) ss += x * x;
  const norm = Math.sqrt(ss);
  if (norm > 0) for (let i = 0; i < d; i++) out[i] = out[i]! / norm;
  return out;
}

export type EncodingFormat = 'float' | 'base64';

/** base64 of the vector's little-endian f32 bytes. */
export function embeddingBase64(v: Float32Array): string {
  const bytes = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) bytes.writeFloatLE(v[i]!, i * 4);
  return bytes.toString('base64');
}

export function embeddingResponse(
  model: string,
  vectors: readonly Float32Array[],
  format: EncodingFormat,
  promptTokens: number,
  costUsd: number,
) {
  return {
    object: 'list',
    data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: format === 'base64' ? embeddingBase64(v) : Array.from(v) })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens, cost_usd: costUsd },
  };
}
