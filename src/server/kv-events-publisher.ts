// KV cache events over ZeroMQ, in vLLM's wire format so that routers built for vLLM (llm-d's KV
// cache indexer behind the inference gateway's precise prefix scorer) read them unchanged:
// a PUB socket, each message three frames: topic (kv@<pod-ip>:<port>@<model>), an 8-byte big-endian
// sequence number (0, 1, ... per publisher), and a msgpack payload [ts, [events...], data_parallel_rank]
// with positional, tagged events:
//   ["BlockStored", [hash...], parent_hash | null, [token_id...], block_size, lora_id = null, medium = null]
//   ["BlockRemoved", [hash...], medium = null]
//   ["AllBlocksCleared"]
// Hashes go out as msgpack uint64 always (0xcf): llm-d's decoder accepts uint64/int64 hashes only.
// A null medium means the engine's own KV pool (the decoders' default tier). `zeromq` is an optional
// dependency, loaded only when a publisher is opened. Sends are queued (one in flight, as zeromq.js
// requires) and dropped, counted, beyond a bound: a slow network never stalls the engine.

import { Encoder } from '@msgpack/msgpack';
import type { KvCacheEvent, KvEventSink } from '../engine/kv/kv-events.js';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';

type ZmqModule = typeof import('zeromq');
type ZmqPublisher = InstanceType<ZmqModule['Publisher']>;

export interface KvEventsPublisherOptions {
  /** tcp://*:5557 binds (also ::, ipc://, inproc://, as vLLM decides); tcp://host:port connects. */
  readonly endpoint: string;
  /** kv@<pod-ip>:<port>@<model>. */
  readonly topic: string;
  readonly dataParallelRank?: number;
  /** Messages ZeroMQ queues per subscriber before dropping (vLLM's default 100,000). */
  readonly sendHighWaterMark?: number;
  /** Unix seconds for the batch timestamp (default Date.now() / 1000). */
  readonly nowSeconds?: () => number;
}

/** Batches waiting to be sent beyond which new ones are dropped (and counted). */
const MAX_QUEUED_BATCHES = 10_000;

const encoder = new Encoder({ useBigInt64: true });

/** The positional form of one event (what vLLM's msgspec array_like tagged structs encode to). */
export function eventTuple(e: KvCacheEvent): unknown[] {
  switch (e.kind) {
    case 'stored':
      return [
        'BlockStored',
        e.hashes.map(BigInt),
        e.parentHash === null ? null : BigInt(e.parentHash),
        e.tokenIds,
        e.blockSize,
        null,
        null,
      ];
    case 'removed':
      return ['BlockRemoved', e.hashes.map(BigInt), null];
    case 'cleared':
      return ['AllBlocksCleared'];
  }
}

/** The msgpack payload of one batch: [ts, [events...], data_parallel_rank]. */
export function encodeKvEventBatch(tsSeconds: number, events: readonly KvCacheEvent[], dataParallelRank = 0): Uint8Array {
  return encoder.encode([tsSeconds, events.map(eventTuple), dataParallelRank]);
}

/** The 8-byte big-endian sequence frame. */
export function sequenceFrame(seq: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(seq);
  return b;
}

/** vLLM's rule: bind on a wildcard, an IPv6 any-address, ipc:// or inproc://; connect otherwise. */
export function bindsEndpoint(endpoint: string): boolean {
  return endpoint.includes('*') || endpoint.includes('::') || endpoint.startsWith('ipc://') || endpoint.startsWith('inproc://');
}

async function loadZmq(importZmq: () => Promise<ZmqModule>): Promise<ZmqModule> {
  try {
    return await importZmq();
  } catch (e) {
    throw new TokenmillError(
      'dependency_missing',
      `--kv-events-endpoint needs the optional package 'zeromq' (prebuilt binaries for Linux, macOS, Windows), which did not load: ` +
        `${(e as Error).message.split('\n')[0]}. Install it next to tokenmill (npm install zeromq@6.8.0) or drop the flag.`,
      { cause: e },
    );
  }
}

export class ZmqKvEventPublisher implements KvEventSink {
  private seq = 0n;
  private queue: Buffer[][] = [];
  private sending = false;
  private closed = false;
  private numDropped = 0;

  private constructor(
    private readonly socket: ZmqPublisher,
    private topic: Buffer,
    private readonly o: KvEventsPublisherOptions,
    /** The address bound or connected to (the port resolved when tcp://*:0 was asked). */
    readonly endpoint: string,
  ) {}

  /** importZmq: how zeromq is loaded (tests inject a failing one to see the error a missing package gives). */
  static async open(
    o: KvEventsPublisherOptions,
    importZmq: () => Promise<ZmqModule> = () => import('zeromq'),
  ): Promise<ZmqKvEventPublisher> {
    const zmq = await loadZmq(importZmq);
    const socket = new zmq.Publisher({ sendHighWaterMark: o.sendHighWaterMark ?? 100_000, linger: 0 });
    try {
      if (bindsEndpoint(o.endpoint)) await socket.bind(o.endpoint);
      else socket.connect(o.endpoint);
    } catch (e) {
      socket.close();
      throw new TokenmillError('invalid_argument', `--kv-events-endpoint ${o.endpoint}: ${(e as Error).message}`, {
        param: '--kv-events-endpoint',
        cause: e,
      });
    }
    return new ZmqKvEventPublisher(socket, Buffer.from(o.topic, 'utf8'), o, socket.lastEndpoint ?? o.endpoint);
  }

  /** Rename the topic (serve --port 0 learns its port only after listening, before any request). */
  setTopic(topic: string): void {
    this.topic = Buffer.from(topic, 'utf8');
  }

  /** Batches published so far (the next sequence number). */
  get numPublished(): number {
    return Number(this.seq);
  }

  /** Batches dropped because the send queue was full. */
  get dropped(): number {
    return this.numDropped;
  }

  publish(events: readonly KvCacheEvent[]): void {
    if (this.closed || events.length === 0) return;
    if (this.queue.length >= MAX_QUEUED_BATCHES) {
      if (this.numDropped++ === 0) log.warn(`KV events: send queue full (${MAX_QUEUED_BATCHES} batches); dropping batches`);
      return;
    }
    const ts = this.o.nowSeconds?.() ?? Date.now() / 1000;
    const payload = encodeKvEventBatch(ts, events, this.o.dataParallelRank ?? 0);
    this.queue.push([this.topic, sequenceFrame(this.seq++), Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)]);
    if (!this.sending) void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frames = this.queue.shift()!;
        try {
          await this.socket.send(frames);
        } catch (e) {
          if (!this.closed) log.warn(`KV events: send failed: ${(e as Error).message}`);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  /** Send what is queued (up to timeoutMs), then close the socket. */
  async close(timeoutMs = 1000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.sending || this.queue.length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    this.closed = true;
    this.socket.close();
  }
}
