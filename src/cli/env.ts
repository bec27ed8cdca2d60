// TOKENMILL_* variables that change engine behaviour, read here at the composition root and handed
// down as options (library code reads no environment for them). Every variable tokenmill reads is
// listed in docs/cli.md ("Environment").
import type { EngineOptions } from '../engine/engine-config.js';
import type { CpuPoolOptions } from '../runtime/native.js';
import { TokenmillError } from '../util/errors.js';

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

/**
 * CPU worker pool options from the environment: TOKENMILL_SPIN_US (microseconds an idle worker spins
 * before sleeping, an integer >= 0) and TOKENMILL_POOL_SOLO=0 (no caller-only fallback under stalls).
 */
export function cpuPoolOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): { cpuPool?: CpuPoolOptions } {
  const pool: { spinUs?: number; poolSolo?: boolean } = {};
  const spin = env.TOKENMILL_SPIN_US;
  if (spin !== undefined && spin !== '') {
    const us = Number(spin);
    if (!Number.isInteger(us) || us < 0 || us > 1e7) {
      const why = `TOKENMILL_SPIN_US must be an integer number of microseconds in [0, 1e7], got '${spin}'`;
      throw new TokenmillError('invalid_argument', why);
    }
    pool.spinUs = us;
  }
  const solo = env.TOKENMILL_POOL_SOLO;
  if (solo !== undefined && solo !== '') pool.poolSolo = solo !== '0';
  return Object.keys(pool).length > 0 ? { cpuPool: pool } : {};
}
