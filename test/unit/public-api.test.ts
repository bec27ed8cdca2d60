// The public API (src/index.ts) exports exactly these runtime names; a change here is an API change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as api from '../../src/index.js';

const EXPECTED = [
  'AsyncEngine',
  'DEFAULT_SAMPLING',
  'ENGINE_DEFAULTS',
  'ERROR_CODES',
  'Engine',
  'IncrementalDetokenizer',
  'MODEL_PRESETS',
  'ModelTokenizer',
  'StopChecker',
  'TokenmillError',
  'TokenmillServer',
  'convertGguf',
  'convertLlama2c',
  'cpuAddonAvailable',
  'createReferenceBackend',
  'createRng',
  'createSequenceSampler',
  'createServer',
  'generate',
  'isTokenmillError',
  'loadModel',
  'loadModelConfigs',
  'loadTokenizer',
  'makeTinyModel',
  'openModelStack',
  'probeCuda',
  'renderChatTemplate',
  'samplingParams',
  'selectBackend',
  'selectChatTemplate',
  'stopCheckerOptions',
  'toTokenmillError',
  'usdPer1kTokens',
  'validateSamplingParams',
  'writeRandomModel',
].sort();

test('src/index.ts exports exactly the public names', () => {
  assert.deepEqual(Object.keys(api).sort(), EXPECTED);
  for (const name of EXPECTED) assert.notEqual((api as Record<string, unknown>)[name], undefined, name);
});

test('the public API samples and stops end to end without a model', () => {
  const sampler = api.createSequenceSampler(api.samplingParams({ temperature: 0, maxTokens: 2 }), [1]);
  const checker = new api.StopChecker(api.stopCheckerOptions(api.samplingParams({ maxTokens: 2 }), [2]));
  const first = sampler.sample(Float32Array.of(0, 5, 1));
  assert.equal(first.tokenId, 1);
  assert.equal(checker.push(first.tokenId, 'a').finished, false);
  assert.equal(checker.push(2, '').finishReason, 'stop');
});
