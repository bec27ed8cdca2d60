// What watching costs the server: serve throughput at N streams (default 32) with D dashboards
// (default 5) polling as the page does (GET /metrics/info once, then /metrics/series?since=<last>
// every refresh, 1 s) against none, in one run against one server, alternating the arms (ABBA per
// pair of rounds) so drift cancels. Writes a JSON record and prints the median tok/s of each arm and
// the difference; the target is at most 2 %.
//
//   TOKENMILL_KEY=sk-... node --import tsx bench/serve/dashboard-overhead.ts --url http://127.0.0.1:8000 \
//     --api-key-env TOKENMILL_KEY --concurrency 32 --dashboards 5 --refresh-ms 1000 --rounds 6 \
//     --num-requests 256 --in 128 --out 128
//
// Run it on a quiet machine (the server on its own cores); a shared box gives noise, not figures.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad } from '../../src/metrics/loadgen/load-generator.js';
import { summarizeLoad } from '../../src/metrics/loadgen/load-summary.js';
import { syntheticLoadPrompts } from '../../src/metrics/loadgen/prompt-source.js';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string' },
    'api-key-env': { type: 'string' },
    model: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    dashboards: { type: 'string', default: '5' },
    'refresh-ms': { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '6' },
    'num-requests': { type: 'string', default: '256' },
    in: { type: 'string', default: '128' },
    out: { type: 'string', default: '128' },
    'vocab-size': { type: 'string', default: '256' },
    output: { type: 'string' },
  },
});
if (a.url === undefined) throw new Error('--url http://host:port is required');
const base = a.url.replace(/\/v1\/?$/, '').replace(/\/$/, '');
const apiKey = a['api-key-env'] !== undefined ? process.env[a['api-key-env']] : undefined;
const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
const int = (s: string | undefined, name: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} ${s}: expected a non-negative integer`);
  return n;
};
const concurrency = int(a.concurrency, 'concurrency');
const numDashboards = int(a.dashboards, 'dashboards');
const refreshMs = int(a['refresh-ms'], 'refresh-ms');
const rounds = int(a.rounds, 'rounds');
const numRequests = int(a['num-requests'], 'num-requests');
const inLen = int(a.in, 'in');
const outLen = int(a.out, 'out');

async function json(path: string): Promise<unknown> {
  const r = await fetch(base + path, { headers });
  if (!r.ok) throw new Error(`GET ${path}: HTTP ${r.status}`);
  return r.json();
}

/** One dashboard tab's traffic until stop() resolves; returns how many polls it made and their mean ms. */
function dashboard(): { stop(): Promise<{ polls: number; meanMs: number }> } {
  let running = true;
  let polls = 0;
  let totalMs = 0;
  const done = (async () => {
    await json('/metrics/info');
    let since: number | null = null;
    while (running) {
      const t0 = performance.now();
      const body = (await json(`/metrics/series${since === null ? '' : `?since=${since}`}`)) as { series: { t: number[] } };
      since = body.series.t.at(-1) ?? since;
      totalMs += performance.now() - t0;
      polls++;
      await new Promise((r) => setTimeout(r, Math.max(0, refreshMs - (performance.now() - t0))));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return { polls, meanMs: polls > 0 ? totalMs / polls : 0 };
    },
  };
}

const model = a.model ?? ((await json('/v1/models')) as { data: { id: string }[] }).data[0]!.id;
const phases: { arm: 'none' | 'dashboards'; round: number; tokPerS: number; numOk: number; polls: number; pollMeanMs: number }[] = [];
for (let round = 0; round < rounds; round++) {
  // ABBA: rounds 0,3,4,7.. start with no dashboards, 1,2,5,6.. with them.
  const order: ('none' | 'dashboards')[] = round % 4 === 0 || round % 4 === 3 ? ['none', 'dashboards'] : ['dashboards', 'none'];
  for (const arm of order) {
    const tabs = arm === 'dashboards' ? Array.from({ length: numDashboards }, dashboard) : [];
    const prompts = syntheticLoadPrompts(numRequests, inLen, outLen, int(a['vocab-size'], 'vocab-size'), 1000 + round);
    const run = await runLoad({ baseUrl: base, model, ...(apiKey ? { apiKey } : {}), prompts, concurrency });
    const stats = await Promise.all(tabs.map((t) => t.stop()));
    const s = summarizeLoad(run);
    const polls = stats.reduce((n, x) => n + x.polls, 0);
    const pollMeanMs = polls > 0 ? stats.reduce((n, x) => n + x.meanMs * x.polls, 0) / polls : 0;
    phases.push({ arm, round, tokPerS: s.tokPerS, numOk: s.numOk, polls, pollMeanMs });
    process.stderr.write(
      `round ${round} ${arm.padEnd(10)} ${s.tokPerS.toFixed(1)} tok/s (${s.numOk}/${numRequests} ok` +
        `${arm === 'dashboards' ? `, ${polls} polls, ${pollMeanMs.toFixed(1)} ms each` : ''})\n`,
    );
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const none = median(phases.filter((p) => p.arm === 'none').map((p) => p.tokPerS));
const watched = median(phases.filter((p) => p.arm === 'dashboards').map((p) => p.tokPerS));
const deltaPct = (100 * (watched - none)) / none;
const record = {
  kind: 'dashboard-overhead',
  date: new Date().toISOString(),
  url: base,
  model,
  concurrency,
  numDashboards,
  refreshMs,
  rounds,
  numRequests,
  inLen,
  outLen,
  medianTokPerS: { none, dashboards: watched },
  deltaPct,
  withinTwoPct: Math.abs(deltaPct) <= 2,
  phases,
};
const file = resolve(a.output ?? `bench/results/dashboard-overhead-${record.date.replace(/[:.]/g, '-')}.json`);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
process.stdout.write(
  `median tok/s: none ${none.toFixed(1)}, ${numDashboards} dashboards ${watched.toFixed(1)} (${deltaPct >= 0 ? '+' : ''}` +
    `${deltaPct.toFixed(2)} %; target within 2 %)\nwrote ${file}\n`,
);
