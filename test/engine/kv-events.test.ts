// KV cache events from the block pool, and their wire form. (1) fast-check: after any sequence of
// allocations, cache registrations, prefix hits, frees and resets, replaying the events (stored adds,
// removed deletes, cleared empties) gives exactly the pool's cached hashes, every removal names a
// stored hash and every stored parent was stored; runs of one chain coalesce into one event.
// (2) A golden frame: the msgpack bytes of a batch, byte for byte, in the positional order llm-d's
// vLLM decoders read (llm-d-kv-cache-manager pkg/kvcache/kvevents/events.go: array structs, exactly
// 3 batch fields, 6 BlockStored and 2 BlockRemoved fields after the tag; llm-d-kv-cache
// engineadapter/vllm_adapter.go: hashes as uint64/int64 only), hashes always uint64 (0xcf).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { BlockPool } from '../../src/engine/kv/block-pool.js';
import { KvEventBuffer, type KvCacheEvent } from '../../src/engine/kv/kv-events.js';
import { hashBlock, ROOT_HASH } from '../../src/engine/kv/prefix-hash.js';
import { kvEventsTopic } from '../../src/cli/serve.js';
import { isTokenmillError } from '../../src/util/errors.js';
import { bindsEndpoint, encodeKvEventBatch, sequenceFrame, ZmqKvEventPublisher } from '../../src/server/kv-events-publisher.js';
import { replay } from './kv-replay.js';

const BS = 4;

type Op = { op: 'seq'; prefix: number; tail: number; blocks: number } | { op: 'free'; which: number } | { op: 'reset' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('seq' as const),
      prefix: fc.integer({ min: 0, max: 3 }),
      tail: fc.integer({ min: 0, max: 40 }),
      blocks: fc.integer({ min: 1, max: 5 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('free' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reset' as const }) },
);

describe('block pool KV events', () => {
  it('replayed events equal the cached set after a random workload (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), fc.integer({ min: 4, max: 24 }), (ops, numBlocks) => {
        const buf = new KvEventBuffer();
        const pool = new BlockPool(numBlocks, BS, true, buf);
        const held: number[][] = [];
        const index = new Set<number>();
        const ever = new Set<number>();
        for (const o of ops) {
          if (o.op === 'free') {
            if (held.length > 0) pool.free(held.splice(o.which % held.length, 1)[0]!.reverse());
          } else if (o.op === 'reset') {
            if (pool.resetPrefixCache()) assert.equal(pool.cachedHashes().length, 0);
          } else {
            // A sequence: a shared prefix (so hits happen) then its own tail, block by block along the chain.
            const toks = Array.from({ length: o.blocks * BS }, (_, i) => (i < 2 * BS ? o.prefix * 100 + i : o.tail * 1000 + i));
            const blocks: number[] = [];
            let parent = ROOT_HASH;
            for (let i = 0; i < o.blocks; i++) {
              const h = hashBlock(parent, toks, i * BS, (i + 1) * BS);
              let b = pool.lookup(h, parent, toks, i * BS);
              if (b >= 0) pool.touch([b]);
              else if (pool.numFreeBlocks > 0) {
                b = pool.allocate(1)[0]!;
                pool.cacheBlock(b, h, parent, toks, i * BS);
              } else break;
              blocks.push(b);
              parent = h;
            }
            held.push(blocks);
          }
          replay(buf.drain(), index, ever);
          assert.deepEqual([...index].sort(), pool.cachedHashes().sort());
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a chain cached in one go is one BlockStored with its parent; evictions coalesce into one BlockRemoved', () => {
    const buf = new KvEventBuffer();
    const pool = new BlockPool(3, BS, true, buf);
    const toks = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const [b0, b1, b2] = pool.allocate(3) as [number, number, number];
    const h0 = hashBlock(ROOT_HASH, toks, 0, 4);
    const h1 = hashBlock(h0, toks, 4, 8);
    const h2 = hashBlock(h1, toks, 8, 12);
    pool.cacheBlock(b0, h0, ROOT_HASH, toks, 0);
    pool.cacheBlock(b1, h1, h0, toks, 4);
    pool.cacheBlock(b2, h2, h1, toks, 8);
    assert.deepEqual(buf.drain(), [{ kind: 'stored', hashes: [h0, h1, h2], parentHash: null, tokenIds: toks, blockSize: BS }]);
    pool.free([b2, b1, b0]);
    pool.allocate(2); // evicts the two blocks at the head of the free queue
    const ev = buf.drain();
    assert.equal(ev.length, 1);
    assert.equal(ev[0]!.kind, 'removed');
    assert.equal((ev[0] as { hashes: number[] }).hashes.length, 2);
    assert.ok(pool.resetPrefixCache() === false, 'blocks in use: no reset');
  });
});

describe('KV events wire format', () => {
  it('golden batch: positional fields, uint64 hashes, [ts, events, dp_rank]', () => {
    const parent = 2 ** 52 - 1;
    const events: KvCacheEvent[] = [
      { kind: 'stored', hashes: [1, 0x1_0000_0002], parentHash: parent, tokenIds: [7, 300], blockSize: 2 },
      { kind: 'removed', hashes: [5] },
      { kind: 'cleared' },
    ];
    const hex = Buffer.from(encodeKvEventBatch(1.5, events, 0)).toString('hex');
    const u64 = (n: bigint) => `cf${n.toString(16).padStart(16, '0')}`;
    const str = (s: string) => (0xa0 + s.length).toString(16) + Buffer.from(s).toString('hex');
    const want = [
      '93',
      'cb3ff8000000000000', // [ts = 1.5 (float64),
      '93', //   [3 events:
      '97',
      str('BlockStored'),
      '92',
      u64(1n),
      u64(0x1_0000_0002n),
      u64(BigInt(parent)),
      '92',
      '07',
      'cd012c',
      '02',
      'c0',
      'c0',
      '93',
      str('BlockRemoved'),
      '91',
      u64(5n),
      'c0',
      '91',
      str('AllBlocksCleared'),
      '00', //  ], data_parallel_rank 0]
    ].join('');
    assert.equal(hex, want);
    const back = decode(encodeKvEventBatch(1.5, events), { useBigInt64: true }) as unknown[];
    assert.deepEqual(back, [
      1.5,
      [['BlockStored', [1n, 0x1_0000_0002n], BigInt(parent), [7, 300], 2, null, null], ['BlockRemoved', [5n], null], ['AllBlocksCleared']],
      0,
    ]);
    assert.equal(sequenceFrame(258n).toString('hex'), '0000000000000102');
  });

  it('binds like vLLM: wildcard, ::, ipc and inproc bind; a host connects', () => {
    for (const e of ['tcp://*:5557', 'tcp://[::]:5557', 'ipc:///tmp/kv', 'inproc://kv']) assert.ok(bindsEndpoint(e), e);
    for (const e of ['tcp://epp.llm-d.svc:5557', 'tcp://127.0.0.1:5557']) assert.ok(!bindsEndpoint(e), e);
  });

  it('the topic is kv@<pod-ip>:<port>@<model>: POD_IP first, else the bound host, else a real address', () => {
    assert.equal(kvEventsTopic('0.0.0.0', 8000, 'llama', { POD_IP: '10.1.2.3' }), 'kv@10.1.2.3:8000@llama');
    assert.equal(kvEventsTopic('127.0.0.1', 9000, 'm', {}), 'kv@127.0.0.1:9000@m');
    assert.match(kvEventsTopic('0.0.0.0', 8000, 'm', {}), /^kv@\d+\.\d+\.\d+\.\d+:8000@m$/);
  });

  it('without the optional zeromq package: a typed dependency_missing error that says what to install', async () => {
    const missing = () => Promise.reject(new Error("Cannot find package 'zeromq' imported from kv-events-publisher.js"));
    await assert.rejects(ZmqKvEventPublisher.open({ endpoint: 'tcp://*:5557', topic: 't' }, missing), (e: unknown) => {
      assert.ok(isTokenmillError(e) && e.code === 'dependency_missing', String(e));
      assert.match((e as Error).message, /npm install zeromq@6\.8\.0/);
      return true;
    });
  });
});
