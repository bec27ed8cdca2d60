// Test and bench helper for the simulated pool: start `tokenmill serve` replicas as processes (from
// the sources, through tsx), read their prefix-cache counters, build a shared-prefix workload and
// run it through a MiniPicker.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { REPO_ROOT, testDevice } from '../e2e/cli-helpers.js';
import type { MiniPicker, Replica } from './mini-picker.js';

/** The sources through tsx (bin/tokenmill.js would run a stale dist/ when one is built). */
const MAIN = join(REPO_ROOT, 'src', 'cli', 'main.ts');

export interface Proc extends Replica {
  readonly child: ChildProcess;
  readonly exit: Promise<number | null>;
}

export async function startReplica(modelDir: string, kvEndpoint: string, extraArgs: readonly string[] = []): Promise<Proc> {
  const args = [
    '--import',
    'tsx',
    MAIN,
    'serve',
    '--model',
    modelDir,
    '--served-model-name',
    'tiny',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--metrics-port',
    '0',
    '--kv-events-endpoint',
    kvEndpoint,
    '--device',
    testDevice(),
    '--threads',
    '1',
    '--kv-cache-memory',
    '8MiB',
    '--max-num-seqs',
    '8',
    '--usd-per-hour',
    '1',
    '--drain-timeout',
    '20',
    ...extraArgs, // later flags win (commander keeps the last value)
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, TOKENMILL_LOG_LEVEL: 'warn', TOKENMILL_API_KEYS: '', POD_IP: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    if (/KV events: .*\n/.test(out)) break;
  }
  child.stdout!.resume();
  const url = /listening on (\S+) /.exec(out)?.[1];
  const metricsUrl = /metrics: (\S+) /.exec(out)?.[1];
  const topic = /topic (\S+)/.exec(out)?.[1];
  if (!url || !metricsUrl || !topic) throw new Error(`serve did not start: ${out}\n${err}`);
  return { child, exit, url, metricsUrl, podId: topic.split('@')[1]! };
}

export async function prefixCounters(replicas: readonly Replica[]): Promise<{ hits: number; queries: number }> {
  let hits = 0;
  let queries = 0;
  for (const r of replicas) {
    const m = await (await fetch(r.metricsUrl)).text().catch(() => '');
    hits += Number(/^tokenmill_prefix_cache_hits_total\{[^}]*\} (\S+)$/m.exec(m)?.[1] ?? 0);
    queries += Number(/^tokenmill_prefix_cache_queries_total\{[^}]*\} (\S+)$/m.exec(m)?.[1] ?? 0);
  }
  return { hits, queries };
}

/** Groups of requests sharing a prefixLen-token prefix (default 64: 4 blocks of 16), each with its own 8-token tail, interleaved. */
export function workload(seed: number, numGroups: number, perGroup: number, prefixLen = 64): number[][] {
  const out: number[][] = [];
  for (let j = 0; j < perGroup; j++) {
    for (let g = 0; g < numGroups; g++) {
      const prefix = Array.from({ length: prefixLen }, (_, i) => 3 + ((seed * 7919 + g * 131 + i * 17) % 240));
      out.push([...prefix, ...Array.from({ length: 8 }, (_, i) => 3 + ((seed + g * 31 + j * 13 + i) % 240))]);
    }
  }
  return out;
}

/** Send prompts through the picker, `concurrency` at a time; returns the statuses in order. */
export async function runThrough(
  picker: MiniPicker,
  prompts: number[][],
  o: { concurrency: number; maxTokens?: number; onDone?: (n: number) => void },
): Promise<{ statuses: number[]; failures: string[]; completionTokens: number }> {
  const statuses: number[] = new Array(prompts.length);
  const failures: string[] = [];
  let completionTokens = 0;
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < prompts.length) {
        const i = next++;
        const body = { model: 'tiny', prompt: prompts[i], max_tokens: o.maxTokens ?? 4, temperature: 0, ignore_eos: true };
        const r = await picker.complete(body);
        statuses[i] = r.status;
        completionTokens += (r.json as { usage?: { completion_tokens?: number } } | null)?.usage?.completion_tokens ?? 0;
        if (r.status !== 200) failures.push(`${r.status} from ${r.podId}: ${JSON.stringify(r.json)}`);
        o.onDone?.(++done);
      }
    }),
  );
  return { statuses, failures, completionTokens };
}
