// Environment variables are read at the composition root (src/cli/env.ts) and handed down: the
// engine itself ignores TOKENMILL_DECODE_GRAPHS; bench records carry the TOKENMILL_* in effect, minus secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineOptionsFromEnv } from '../../src/cli/env.js';
import { tokenmillEnv } from '../../src/cli/bench-common.js';
import { resolveEngineConfig } from '../../src/engine/engine-config.js';
import type { CausalLM } from '../../src/model/types.js';

test('TOKENMILL_DECODE_GRAPHS reaches the engine only through the CLI', () => {
  assert.deepEqual(engineOptionsFromEnv({ TOKENMILL_DECODE_GRAPHS: '1' }), { decodeGraphs: true });
  assert.deepEqual(engineOptionsFromEnv({}), {});
  assert.deepEqual(engineOptionsFromEnv({ TOKENMILL_DEVICE_GRAMMAR_MASKS: '1' }), { deviceGrammarMasks: true });
  const model = { config: { maxPositionEmbeddings: 64, eosTokenIds: [2] }, maxTokensPerStep: 64, maxLogitsPerStep: 8, kvBytesPerToken: () => 64 } as unknown as CausalLM;
  const env = { ...process.env };
  process.env.TOKENMILL_DECODE_GRAPHS = '1';
  try {
    assert.equal(resolveEngineConfig({ model, numBlocks: 8 }).decodeGraphs, false);
    assert.equal(resolveEngineConfig({ model, numBlocks: 8, ...engineOptionsFromEnv() }).decodeGraphs, true);
    assert.equal(resolveEngineConfig({ model, numBlocks: 8 }).deviceGrammarMasks, false, 'device masks stay off by default');
  } finally {
    if (env.TOKENMILL_DECODE_GRAPHS === undefined) delete process.env.TOKENMILL_DECODE_GRAPHS;
    else process.env.TOKENMILL_DECODE_GRAPHS = env.TOKENMILL_DECODE_GRAPHS;
  }
});

test('bench records name the TOKENMILL_* variables in effect, never API keys', () => {
  assert.deepEqual(tokenmillEnv({ TOKENMILL_CPU_ISA: 'avx2', TOKENMILL_API_KEYS: 'sk-secret', PATH: '/bin' }), { TOKENMILL_CPU_ISA: 'avx2' });
});
