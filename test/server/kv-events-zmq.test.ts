// KV events end to end: the real engine on the tiny model publishes through the real ZeroMQ PUB
// socket (connecting, as to a central indexer) to a SUB socket bound here, which decodes every frame
// as llm-d's subscriber does: three frames (topic kv@<pod>@<model>, 8-byte big-endian sequence,
// msgpack [ts, events, dp_rank]), hashes as uint64. After each random workload (fast-check: shared
// prefixes, random tails, a pool small enough to evict), the index rebuilt from the events equals
// the pool's cached set exactly, and sequence numbers have no gaps.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import type { KvCacheEvent } from '../../src/engine/kv/kv-events.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { ZmqKvEventPublisher } from '../../src/server/kv-events-publisher.js';
import { replay } from '../engine/kv-replay.js';
import { disposeTinyModel, tinyModel } from '../engine/tiny-model.js';

after(disposeTinyModel);

const TOPIC = 'kv@127.0.0.1:8000@tiny';
type Zmq = typeof import('zeromq');
const zmq: Zmq | null = await import('zeromq').catch(() => null);
const skip = zmq === null ? (process.env.CI === 'true' ? false : 'the optional zeromq package is not installed') : false;

function toEvent(t: unknown[]): KvCacheEvent {
  const hashes = (v: unknown) => {
    assert.ok(Array.isArray(v) && v.every((h) => typeof h === 'bigint'), 'hashes are msgpack uint64');
    return (v as bigint[]).map(Number);
  };
  if (t[0] === 'BlockStored') {
    assert.equal(t.length, 7);
    assert.deepEqual(t.slice(5), [null, null], 'lora_id and medium');
    assert.ok(t[2] === null || typeof t[2] === 'bigint');
    return {
      kind: 'stored',
      hashes: hashes(t[1]),
      parentHash: t[2] === null ? null : Number(t[2]),
      tokenIds: t[3] as number[],
      blockSize: t[4] as number,
    };
  }
  if (t[0] === 'BlockRemoved') {
    assert.equal(t.length, 3);
    return { kind: 'removed', hashes: hashes(t[1]) };
  }
  assert.deepEqual(t, ['AllBlocksCleared']);
  return { kind: 'cleared' };
}

describe('KV events over ZeroMQ', { skip }, () => {
  let sub: InstanceType<Zmq['Subscriber']>;
  let publisher: ZmqKvEventPublisher;
  let engine: AsyncEngine;
  const received: { seq: bigint; events: KvCacheEvent[] }[] = [];
  let reader: Promise<void>;

  before(async () => {
    sub = new zmq!.Subscriber({ linger: 0 });
    sub.subscribe('kv@');
    await sub.bind('tcp://127.0.0.1:0');
    reader = (async () => {
      for await (const frames of sub) {
        assert.equal(frames.length, 3);
        assert.equal(frames[0]!.toString(), TOPIC);
        assert.equal(frames[1]!.length, 8);
        const batch = decode(frames[2]!, { useBigInt64: true }) as unknown[];
        assert.equal(batch.length, 3, '[ts, events, data_parallel_rank]');
        assert.ok(typeof batch[0] === 'number' && Math.abs(batch[0] - Date.now() / 1000) < 60);
        assert.ok(batch[2] === 0 || batch[2] === 0n);
        received.push({ seq: frames[1]!.readBigUInt64BE(), events: (batch[1] as unknown[][]).map(toEvent) });
      }
    })().catch(() => undefined);
    publisher = await ZmqKvEventPublisher.open({ endpoint: sub.lastEndpoint!, topic: TOPIC });
    const { model } = await tinyModel();
    engine = new AsyncEngine({
      modelId: 'tiny',
      model,
      numBlocks: 12,
      blockSize: 16,
      maxModelLen: 128,
      eosTokenIds: model.config.eosTokenIds,
      kvEvents: publisher,
    });
  });
  after(async () => {
    await engine?.shutdown();
    await publisher?.close();
    sub?.close();
    await reader;
  });

  const run = async (prompts: number[][], maxTokens: number[]): Promise<void> => {
    await Promise.all(
      prompts.map(async (promptTokenIds, i) => {
        const params = samplingParams({ maxTokens: maxTokens[i]!, temperature: 0, ignoreEos: true });
        for await (const _ of engine.generate({ requestId: `r${Math.random()}`, promptTokenIds, params })) {
          /* drain */
        }
      }),
    );
  };
  const caughtUp = async (): Promise<void> => {
    for (let i = 0; i < 500 && received.length > 0 && received.at(-1)!.seq !== BigInt(publisher.numPublished - 1); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(received.at(-1)?.seq, BigInt(publisher.numPublished - 1), 'every published batch arrived');
  };

  it('events rebuild the pool cached set exactly after random workloads', async () => {
    // Slow joiner: the subscription reaches the publisher some time after it connects; batches before
    // that are lost. Warm up until one arrives, then start from the pool's state at that idle moment.
    for (let attempt = 0; received.length === 0 && attempt < 100; attempt++) {
      await run([Array.from({ length: 40 }, (_, i) => 1 + ((attempt * 41 + i) % 200))], [1]);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(received.length > 0, 'the subscriber received a batch');
    await caughtUp();
    const pool = engine.engine.kv.pool;
    const index = new Set(pool.cachedHashes());
    const ever = new Set(index);
    let next = received.length;
    for (let i = 1; i < received.length; i++) assert.equal(received[i]!.seq, received[i - 1]!.seq + 1n, 'no gap after the first batch');

    const prefixes = [0, 1, 2].map((p) => Array.from({ length: 32 }, (_, i) => 3 + p * 50 + i));
    const reqArb = fc.record({
      prefix: fc.integer({ min: 0, max: 2 }),
      tail: fc.array(fc.integer({ min: 3, max: 250 }), { maxLength: 40 }),
      out: fc.integer({ min: 1, max: 8 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(reqArb, { minLength: 1, maxLength: 8 }), async (reqs) => {
        await run(
          reqs.map((r) => [...prefixes[r.prefix]!, ...r.tail]),
          reqs.map((r) => r.out),
        );
        await caughtUp();
        for (; next < received.length; next++) {
          assert.equal(received[next]!.seq, received[next - 1]!.seq + 1n, 'sequence numbers have no gaps');
          replay(received[next]!.events, index, ever);
        }
        assert.deepEqual([...index].sort(), pool.cachedHashes().sort());
      }),
      { numRuns: 6 },
    );
    // The random workloads above need not overflow the pool (a run of short requests may fit), so a
    // fixed one follows that must: three distinct 68-token requests need 15 blocks of the 12.
    for (let k = 0; k < 3; k++) await run([Array.from({ length: 64 }, (_, i) => 3 + ((k * 67 + i * 7) % 248))], [4]);
    await caughtUp();
    for (; next < received.length; next++) {
      assert.equal(received[next]!.seq, received[next - 1]!.seq + 1n, 'sequence numbers have no gaps');
      replay(received[next]!.events, index, ever);
    }
    assert.deepEqual([...index].sort(), pool.cachedHashes().sort());
    assert.ok(
      received.some((b) => b.events.some((e) => e.kind === 'removed')),
      'the workload evicted cached blocks',
    );
    assert.equal(publisher.dropped, 0);
  });
});
