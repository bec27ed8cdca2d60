// llama.cpp runs what `convert to-gguf` writes: through node-llama-cpp (optional, not a dependency:
// set TOKENMILL_NODE_LLAMA_CPP=<package dir> or install it; skipped otherwise), stories260K's GGUF
// reproduces the 200-token reference greedy continuation, and a tiny Llama 3.1-style bf16 model
// (byte-level BPE, llama3 rope factors) tokenizes and greedy-decodes exactly as tokenmill does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generate } from '../../src/engine/generate.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { convertLlama2c } from '../../src/model/convert/llama2c.js';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';

// The slice of node-llama-cpp v3 used here.
interface Nlc {
  getLlama(o: { gpu: false; logLevel?: string }): Promise<{
    loadModel(o: { modelPath: string }): Promise<{
      tokenize(text: string, special?: boolean): readonly number[];
      createContext(o: { contextSize: number; batchSize: number; threads: number; sequences: number }): Promise<{
        getSequence(): { evaluate(tokens: number[], o?: { temperature?: number }): AsyncGenerator<number, void, unknown> };
        dispose(): Promise<void>;
      }>;
      dispose(): Promise<void>;
    }>;
    dispose(): Promise<void>;
  }>;
}

async function loadNlc(): Promise<Nlc | null> {
  const local = fileURLToPath(new URL('../../bench/peers/node_modules/node-llama-cpp', import.meta.url));
  const dir = process.env.TOKENMILL_NODE_LLAMA_CPP || (existsSync(local) ? local : undefined);
  try {
    return (await import(dir ? pathToFileURL(join(resolve(dir), 'dist', 'index.js')).href : 'node-llama-cpp')) as Nlc;
  } catch {
    return null;
  }
}

const nlc = await loadNlc();
const skipNoPeer = nlc === null ? 'node-llama-cpp is not installed (optional peer; set TOKENMILL_NODE_LLAMA_CPP=<package dir>)' : false;
const work = mkdtempSync(join(tmpdir(), 'tm-llamacpp-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function llamaCppGreedy(gguf: string, prompt: number[] | string, numTokens: number): Promise<{ promptIds: number[]; ids: number[] }> {
  const llama = await nlc!.getLlama({ gpu: false, logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: gguf });
  const promptIds = typeof prompt === 'string' ? Array.from(model.tokenize(prompt, false)) : prompt;
  const ctx = await model.createContext({ contextSize: 256, batchSize: 256, threads: 2, sequences: 1 });
  const ids: number[] = [];
  try {
    for await (const t of ctx.getSequence().evaluate(promptIds, { temperature: 0 })) {
      ids.push(t);
      if (ids.length >= numTokens) break;
    }
  } finally {
    await ctx.dispose();
    await model.dispose();
    await llama.dispose();
  }
  return { promptIds, ids };
}

describe('llama.cpp runs to-gguf output', { skip: skipNoPeer }, () => {
  before(() => assert.ok(nlc));

  it('stories260K: the 200-token reference greedy continuation', {
    skip: skipUnlessShared('stories260K/stories260K.bin', 'stories260K/reference_greedy.json'),
  }, async () => {
    const hf = join(work, 'stories260K');
    convertLlama2c(sharedPath('stories260K/stories260K.bin'), sharedPath('stories260K/tok512.bin'), hf);
    convertToGguf(hf, join(work, 's.gguf'));
    const ref = JSON.parse(readFileSync(sharedPath('stories260K/reference_greedy.json'), 'utf8')) as {
      bos_id: number;
      steps: number;
      generated_ids: number[];
    };
    const { ids } = await llamaCppGreedy(join(work, 's.gguf'), [ref.bos_id], ref.steps);
    assert.deepEqual(ids, ref.generated_ids.slice(0, ref.steps));
  });

  it('tiny Llama 3.1 style bf16: same prompt tokens and the same greedy tokens as tokenmill', async () => {
    const dir = join(work, 'tiny-llama3');
    writeRandomModel(dir, MODEL_PRESETS['tiny-llama3']!.config, { seed: 5, dtype: 'bf16' });
    convertToGguf(dir, join(work, 't.gguf'));
    assert.ok(existsSync(join(work, 't.gguf')));
    const text = 'The quick brown fox jumps over the lazy dog, again and again.';
    const tok = loadTokenizer(dir);
    const prompt = await tok.encode(text, { addSpecialTokens: false });
    const backend = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 2 }) : createReferenceBackend();
    const { model } = await loadModel(dir, backend);
    const ours: number[] = [];
    try {
      for await (const ev of generate(model, tok, prompt, { params: samplingParams({ temperature: 0, maxTokens: 24, ignoreEos: true }) }))
        ours.push(...ev.tokenIds);
    } finally {
      model.dispose();
      backend.dispose();
    }
    const peer = await llamaCppGreedy(join(work, 't.gguf'), text, 24);
    assert.deepEqual(peer.promptIds, prompt);
    assert.deepEqual(peer.ids, ours);
  });
});
