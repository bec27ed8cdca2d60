// The idle memory release (src/server/idle-memory.ts): one release per burst of requests, only once
// the engine and the HTTP side have been quiet for idleMs, never while the engine holds work; the
// full GC it runs really collects; and on the real server the release shows in /metrics.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fullGc, IdleMemoryRelease } from '../../src/server/idle-memory.js';
import { startRealLive, until } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('IdleMemoryRelease', () => {
  it('releases once per burst, after idleMs of quiet, and not before any request', async () => {
    let released = 0;
    const idle = new IdleMemoryRelease({ idleMs: 80, busy: () => false, release: () => void released++ });
    try {
      await sleep(200);
      assert.equal(released, 0, 'no request yet: nothing to give back');
      idle.touch();
      await sleep(30);
      assert.equal(released, 0, 'still within idleMs of the last request');
      await until(() => released === 1, 'the release after the burst', 2000);
      await sleep(200);
      assert.equal(released, 1, 'one release per burst, not one per tick');
      idle.touch();
      await until(() => released === 2, 'the release after the next burst', 2000);
      assert.equal(idle.count, 2);
    } finally {
      idle.stop();
    }
  });

  it('waits while the engine holds work, however long ago the last request came', async () => {
    let released = 0;
    let busy = true;
    const idle = new IdleMemoryRelease({ idleMs: 50, busy: () => busy, release: () => void released++ });
    try {
      idle.touch();
      await sleep(300);
      assert.equal(released, 0, 'a long stream keeps the engine busy: no GC pause under it');
      busy = false;
      await until(() => released === 1, 'the release once the engine is idle', 2000);
    } finally {
      idle.stop();
    }
  });

  it('fullGc collects garbage (heap used falls after dropping 50 MB of objects)', () => {
    let junk: number[][] | null = Array.from({ length: 50 }, () => Array.from({ length: 125_000 }, (_, i) => i + 0.5));
    const held = process.memoryUsage().heapUsed;
    assert.ok(junk.length === 50);
    junk = null;
    assert.equal(fullGc(), true, 'gc is reachable');
    const after = process.memoryUsage().heapUsed;
    assert.ok(after < held - 30e6, `heap used ${held} -> ${after} bytes`);
  });
});

describe('idle memory release on the real server', () => {
  it('runs after requests stop and counts in /metrics; absent option: never', async () => {
    const live = await startRealLive({ server: { idleMemoryReleaseMs: 150, metricsPublic: true } });
    const count = async (): Promise<number> => {
      const text = await fetch(`${live.url}/metrics`).then((r) => r.text());
      const m = /^tokenmill_idle_memory_releases_total (\d+)/m.exec(text);
      return m ? Number(m[1]) : NaN;
    };
    try {
      await live.client.completions.create({ model: 'tiny-model', prompt: 'hello', max_tokens: 8 });
      await until(async () => (await count()) === 1, 'a release in /metrics');
      // Scrapes are monitoring, not load: polling /metrics wakes no further release.
      for (let i = 0; i < 5; i++) {
        await sleep(100);
        assert.equal(await count(), 1);
      }
    } finally {
      await live.close();
    }
    const off = await startRealLive({ server: { metricsPublic: true } });
    try {
      await off.client.completions.create({ model: 'tiny-model', prompt: 'hello', max_tokens: 4 });
      const text = await fetch(`${off.url}/metrics`).then((r) => r.text());
      assert.doesNotMatch(text, /tokenmill_idle_memory_releases_total/);
    } finally {
      await off.close();
    }
  });
});
