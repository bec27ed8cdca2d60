// f32 vs weight-only int8 (--quantize int8) free-running greedy agreement over 64 decode steps, for
// `npm run bench:cpu`: the same prompt through bench/cpu/measure.ts twice (one process each, 1 thread,
// one timed rep), then how many of the 64 generated ids match position by position and how long the
// common prefix is (after the first flip the two continuations see different contexts).
import { spawnSync } from 'node:child_process';

export interface Int8Agreement {
  readonly model: string;
  readonly steps: number;
  /** Positions (of `steps`) where f32 and int8 chose the same id. */
  readonly matches: number;
  /** Generated ids before the first disagreement (= steps when none). */
  readonly commonPrefix: number;
  readonly command: string;
}

function greedyIds(args: string[]): number[] {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'bench/cpu/measure.ts', ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (res.status !== 0) throw new Error(`measure.ts ${args.join(' ')} failed:\n${res.stderr}`);
  const m = JSON.parse(res.stdout.trim().split('\n').pop()!) as { greedyIds?: number[] };
  if (m.greedyIds === undefined) throw new Error('measure.ts printed no greedyIds');
  return m.greedyIds;
}

export function measureInt8Agreement(name: string, modelDir: string, steps = 64): Int8Agreement {
  const base = ['--model', modelDir, '--threads', '1', '--prompt', '16', '--gen', String(steps), '--reps', '1'];
  const f32 = greedyIds(base).slice(0, steps);
  const int8 = greedyIds([...base, '--quantize', 'int8']).slice(0, steps);
  let matches = 0;
  let commonPrefix = -1;
  for (let i = 0; i < steps; i++) {
    if (f32[i] === int8[i]) matches++;
    else if (commonPrefix < 0) commonPrefix = i;
  }
  const command = `node --import tsx bench/cpu/measure.ts ${base.join(' ')} [--quantize int8]`;
  return { model: name, steps, matches, commonPrefix: commonPrefix < 0 ? steps : commonPrefix, command };
}
