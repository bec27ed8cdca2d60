// Memory under a fuzz of bad requests, CI-sized (bench/soak/fuzz-memory.ts is the long run): a real
// `tokenmill serve` on a tiny model takes 15 s of seeded bad and odd requests, a sixth of them bodies
// near the 2 MiB limit. Nothing may answer 5xx, RSS may not grow more than 150 MB over the warm-up
// level (before texts that cannot fit the context were refused untokenized, it grew by ~2 GB), and
// it must come back within 50 MB of the warm-up level once the load stops (the idle memory release:
// src/server/idle-memory.ts). RSS is memory, not timing: a slow
// machine serves fewer requests, it does not let each keep more.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFuzzMemory } from '../../bench/soak/fuzz-memory-run.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';

const skip =
  process.platform !== 'linux'
    ? 'reads RSS from /proc'
    : !cpuAddonAvailable().available && process.env.CI !== 'true'
      ? 'needs the CPU addon'
      : false;

test('fuzz: RSS growth < 150 MB under load, back within 50 MB of the warm-up level after it, no 5xx', { skip }, async (t) => {
  const r = await runFuzzMemory({
    seconds: 15,
    idleSeconds: 8,
    concurrency: 8,
    seed: 20261203,
    bigShare: 0.15,
    idleMemoryReleaseSeconds: 3,
  });
  const figures =
    `warm ${r.warmRssMb.toFixed(0)} MB, peak ${r.peakRssMb.toFixed(0)} MB, after idle ${r.afterIdleRssMb.toFixed(0)} MB; ` +
    `${r.numSent} requests ${JSON.stringify(r.statuses)}`;
  t.diagnostic(figures);
  assert.equal(r.num5xx, 0, figures);
  assert.ok((r.statuses[200] ?? 0) > 10 && (r.statuses[400] ?? 0) > 10 && (r.statuses[413] ?? 0) > 0, figures);
  assert.ok(r.growthMb < 150, figures);
  // The server's idle release (full GC + malloc_trim, 3 s after the load here) gives the heap back.
  assert.ok(r.settleMb < 50, figures);
});
