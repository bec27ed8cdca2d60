// Memory under a fuzz of bad requests (fuzz-memory-run.ts): prints the summary and the samples,
// exits 1 unless the RSS growth over the warm-up level stays under --max-growth-mb during load, falls
// back within --settle-mb after --idle-seconds, and nothing answered 5xx. RSS is memory, not timing:
// a loaded machine changes how many requests run, not what each one may keep.
//
//   node --import tsx bench/soak/fuzz-memory.ts [--seconds 60] [--idle-seconds 30] [--concurrency 16] [--seed N]
//     [--big-share 0.08] [--no-big-chat] [--kv-cache-memory 40MiB] [--server-node-options "..."] [--out FILE.json]
//     [--idle-memory-release SECONDS] [--snapshot-dir DIR]  (a heap snapshot once idle; the sample after it is post-GC)
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { gitCommitOf } from '../../src/cli/bench-common.js';
import { environmentFingerprint } from '../../src/metrics/fingerprint.js';
import { runFuzzMemory } from './fuzz-memory-run.js';

const { values: a } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'idle-seconds': { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '16' },
    seed: { type: 'string', default: '20261202' },
    'kv-cache-memory': { type: 'string', default: '40MiB' },
    'server-node-options': { type: 'string', default: '' },
    out: { type: 'string' },
    'snapshot-dir': { type: 'string' },
    'idle-memory-release': { type: 'string' },
    'max-growth-mb': { type: 'string', default: '150' },
    'settle-mb': { type: 'string', default: '50' },
    'big-share': { type: 'string', default: '0.08' },
    'no-big-chat': { type: 'boolean', default: false },
  },
});

const r = await runFuzzMemory({
  seconds: Number(a.seconds),
  idleSeconds: Number(a['idle-seconds']),
  concurrency: Number(a.concurrency),
  seed: Number(a.seed),
  bigShare: Number(a['big-share']),
  bigChat: !a['no-big-chat'],
  kvCacheMemory: a['kv-cache-memory']!,
  serverNodeOptions: a['server-node-options']!,
  ...(a['idle-memory-release'] === undefined ? {} : { idleMemoryReleaseSeconds: Number(a['idle-memory-release']) }),
  ...(a['snapshot-dir'] === undefined ? {} : { snapshotDir: a['snapshot-dir'] }),
});
const pass = r.growthMb < Number(a['max-growth-mb']) && r.settleMb < Number(a['settle-mb']) && r.num5xx === 0;
process.stdout.write(`${JSON.stringify({ bench: 'fuzz-memory', ...r, samples: undefined, pass })}\n`);
for (const s of r.samples) {
  process.stdout.write(
    `${s.tS.toFixed(0)}s ${s.phase} rss ${s.rssMb.toFixed(0)} heap ${s.heapUsedMb.toFixed(0)}/${s.heapTotalMb.toFixed(0)} ` +
      `ext ${s.externalMb.toFixed(0)} ab ${s.arrayBuffersMb.toFixed(0)} ` +
      `spaces ${Object.entries(s.spacesMb)
        .map(([k, v]) => `${k}:${v.toFixed(0)}`)
        .join(' ')}\n`,
  );
}
if (a.out !== undefined) {
  const fingerprint = await environmentFingerprint({});
  const commit = gitCommitOf(fingerprint);
  const record = { bench: 'fuzz-memory', commit, fingerprintId: fingerprint.fingerprintId, device: fingerprint, ...r, pass };
  writeFileSync(a.out, JSON.stringify(record, null, 1));
}
process.exitCode = pass ? 0 : 1;
