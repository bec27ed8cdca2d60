// Test helper: a seeded random-weight model whose vocabulary is a real tokenizer from ../shared/models
// (Qwen3: byte-level, 151669 tokens padded to 151936 rows like the real checkpoints; Llama 3:
// byte-level, 128256; Llama 2: SentencePiece with byte fallback, 32000), small everywhere else so
// a step costs little beyond the logits row. Loaded on
// the CPU backend when built. One per (kind) per test file, cached; call disposeRealVocabModels().
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadModel } from '../../src/model/loader.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer, type ModelTokenizer } from '../../src/model/tokenizer.js';
import type { CausalLM } from '../../src/model/types.js';
import type { Backend } from '../../src/runtime/backend.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { sharedPath } from '../tokenizer/shared-models.js';

export type RealVocabKind = 'qwen3' | 'llama3' | 'llama2';

export interface RealVocabModel {
  readonly model: CausalLM;
  readonly tokenizer: ModelTokenizer;
  readonly backend: Backend;
  readonly eosTokenIds: readonly number[];
  readonly dir: string;
}

const small = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-6,
};

const CONFIGS: Record<RealVocabKind, { tokenizerDir: string; config: Record<string, unknown>; eos: number[] }> = {
  qwen3: {
    tokenizerDir: 'qwen3-tokenizer',
    config: {
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      ...small,
      head_dim: 16,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      vocab_size: 151936,
      bos_token_id: 151643,
      eos_token_id: 151645,
    },
    eos: [151645, 151643],
  },
  llama3: {
    tokenizerDir: 'llama3-tokenizer',
    config: {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      ...small,
      rope_theta: 500000,
      tie_word_embeddings: true,
      vocab_size: 128256,
      bos_token_id: 128000,
      eos_token_id: [128001, 128009],
    },
    eos: [128001, 128009],
  },
  // SentencePiece (byte fallback): tokenizer.bin converted by writeRandomModel's tokenizerDir.
  llama2: {
    tokenizerDir: 'llama2-tokenizer',
    config: { architectures: ['LlamaForCausalLM'], model_type: 'llama', ...small, tie_word_embeddings: true },
    eos: [2],
  },
};

const cache = new Map<RealVocabKind, Promise<RealVocabModel>>();
const cleanups: (() => void)[] = [];

export async function disposeRealVocabModels(): Promise<void> {
  for (const p of cache.values()) await p.catch(() => undefined);
  for (const f of cleanups.splice(0).reverse()) f();
  cache.clear();
}

export function realVocabModel(kind: RealVocabKind): Promise<RealVocabModel> {
  let p = cache.get(kind);
  if (p === undefined) {
    p = build(kind);
    cache.set(kind, p);
  }
  return p;
}

async function build(kind: RealVocabKind): Promise<RealVocabModel> {
  const spec = CONFIGS[kind];
  const dir = mkdtempSync(join(tmpdir(), `tm-${kind}-vocab-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  if (kind === 'llama2')
    writeRandomModel(dir, spec.config, { seed: 7, tokenizerDir: dirname(sharedPath(`${spec.tokenizerDir}/tokenizer.bin`)) });
  else {
    writeRandomModel(dir, spec.config, { seed: 7, tokenizer: false });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(sharedPath(`${spec.tokenizerDir}/${f}`), join(dir, f));
  }
  const useCpu = process.env.TOKENMILL_TEST_BACKEND !== 'reference' && cpuAddonAvailable().available;
  const backend = useCpu ? createCpuBackend({ numThreads: 2 }) : createReferenceBackend();
  const { model } = await loadModel(dir, backend, { maxTokensPerStep: 512, maxLogitsPerStep: 64 });
  cleanups.push(() => {
    model.dispose();
    backend.dispose();
  });
  return { model, tokenizer: loadTokenizer(dir), backend, eosTokenIds: spec.eos, dir };
}
