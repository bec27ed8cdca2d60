// A simulated inference pool: three `tokenmill serve` processes on loopback (tiny random model, CPU
// backend, --metrics-port, --kv-events-endpoint connecting to the test picker's SUB socket) behind
// test/pool/mini-picker.ts. With a shared-prefix workload (groups of requests sharing a 4-block
// prefix), routing by the replicas' KV events reaches a clearly higher prefix-cache hit rate than
// round-robin (measured by the replicas' own tokenmill_prefix_cache_* counters); and when one replica
// is drained (SIGTERM) mid-run, every request still succeeds and the picker stops sending it work.
// Throughput is a bench matter (bench/serve/scrape-cost.ts covers the scrape), not asserted here.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { MiniPicker } from './mini-picker.js';
import { prefixCounters, type Proc, runThrough as runAll, startReplica, workload } from './replicas.js';

type Zmq = typeof import('zeromq');
const zmq: Zmq | null = await import('zeromq').catch(() => null);
const skip = zmq === null ? (process.env.CI === 'true' ? false : 'the optional zeromq package is not installed') : false;

/** Every request through the picker must succeed (a failure names its status, replica and body). */
async function runThrough(picker: MiniPicker, prompts: number[][], concurrency: number, onDone?: (n: number) => void): Promise<number[]> {
  const r = await runAll(picker, prompts, { concurrency, ...(onDone ? { onDone } : {}) });
  assert.deepEqual(r.failures, [], 'every request succeeds');
  return r.statuses;
}

describe('a pool of tokenmill replicas behind a KV-event-aware picker', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-pool-'));
  let sub: InstanceType<Zmq['Subscriber']>;
  let replicas: Proc[] = [];
  let picker: MiniPicker;

  before(async () => {
    writeRandomModel(dir, { ...MODEL_PRESETS['tiny-llama']!.config, max_position_embeddings: 512 }, { seed: 5 });
    sub = new zmq!.Subscriber({ linger: 0 });
    sub.subscribe('kv@');
    await sub.bind('tcp://127.0.0.1:0');
    replicas = await Promise.all([0, 1, 2].map(() => startReplica(dir, sub.lastEndpoint!)));
    picker = new MiniPicker(sub);
    for (const r of replicas) picker.add(r);
    picker.start();
  });
  after(async () => {
    picker?.stop();
    for (const r of replicas) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exit));
    sub?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const measure = async (mode: 'prefix' | 'round-robin', seed: number): Promise<number> => {
    picker.mode = mode;
    const before = await prefixCounters(replicas);
    const statuses = await runThrough(picker, workload(seed, 7, 4), 3);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      `${mode}: every request succeeds`,
    );
    const afterRun = await prefixCounters(replicas);
    return (afterRun.hits - before.hits) / (afterRun.queries - before.queries);
  };

  it('prefix-aware routing beats round-robin on prefix-cache hit rate', async (t) => {
    // Slow joiner: wait until the picker's socket gets events from every replica before measuring.
    picker.mode = 'round-robin';
    for (let i = 0; i < 200 && replicas.some((r) => picker.cachedBlocks(r.podId) === 0); i++) {
      await runThrough(picker, workload(1000 + i, 3, 1), 3);
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const r of replicas) assert.ok(picker.cachedBlocks(r.podId) > 0, `KV events from ${r.podId} reach the picker`);
    const rr = await measure('round-robin', 1);
    const routed = await measure('prefix', 2);
    // 7 groups x 4 requests over 3 replicas (7 and 3 coprime, so round-robin does not stick a group to
    // a replica by accident): round-robin pays a cold prefix once per group and replica (21 of 28),
    // routing by cached blocks about once per group (7 of 28).
    t.diagnostic(`prefix-cache hit rate: prefix-aware ${routed.toFixed(3)}, round-robin ${rr.toFixed(3)}`);
    assert.ok(routed > rr + 0.1, `hit rate: prefix-aware ${routed.toFixed(3)} vs round-robin ${rr.toFixed(3)}`);
  });

  it('no request fails when a replica drains mid-run; the drained one gets no more work', async () => {
    picker.mode = 'prefix';
    const victim = replicas[0]!;
    let routedAtDrain = -1;
    const statuses = await runThrough(picker, workload(3, 7, 4), 3, (n) => {
      if (n === 8) {
        victim.child.kill('SIGTERM'); // drain: /ready 503, new requests 503, in-flight ones finish
        routedAtDrain = picker.routedTo(victim.podId);
      }
    });
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every request succeeded',
    );
    assert.equal(await victim.exit, 0, 'the drained replica exits cleanly');
    assert.ok(!picker.isReady(victim.podId), 'the picker saw it leave');
    // At most the requests in flight or racing the drain went to it after SIGTERM (each retried elsewhere).
    assert.ok(
      picker.routedTo(victim.podId) - routedAtDrain <= 6,
      `${picker.routedTo(victim.podId) - routedAtDrain} routed to the draining replica`,
    );
  });
});
