// TOKENMILL_* variables that change engine behaviour, read here at the composition root and handed
// down as options (library code reads no environment for them). Every variable tokenmill reads is
// listed in docs/cli.md ("Environment").
import type { EngineOptions } from '../engine/engine-config.js';

/**
 * Engine options from the environment: TOKENMILL_DECODE_GRAPHS=1 turns decode-step graphs on;
 * TOKENMILL_DEVICE_GRAMMAR_MASKS=1 applies grammar masks on the device (CUDA).
 */
export function engineOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<EngineOptions, 'decodeGraphs' | 'deviceGrammarMasks'> {
  return {
    ...(env.TOKENMILL_DECODE_GRAPHS === '1' ? { decodeGraphs: true } : {}),
    ...(env.TOKENMILL_DEVICE_GRAMMAR_MASKS === '1' ? { deviceGrammarMasks: true } : {}),
  };
}
