// A device-free simulator for scheduler tests: Scheduler + KvCacheManager driven by a fake model
// whose next token is a hash of the whole context, with a host "KV cache" written through the slot
// mapping and read back through the block table, so wrong blocks or stale prefix hits show up.
import assert from 'node:assert/strict';
import { BlockPool } from '../../src/engine/kv/block-pool.js';
import { KvCacheManager } from '../../src/engine/kv/kv-cache-manager.js';
import { Request, type Sequence } from '../../src/engine/request.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { Scheduler, type SchedulerConfig, type SchedulerOutput } from '../../src/engine/scheduler.js';

export const SIM_VOCAB = 50;

/** The fake model: the next token after a context. */
export function nextToken(ctx: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const t of ctx) h = Math.imul(h ^ t, 0x01000193);
  return (h >>> 0) % SIM_VOCAB;
}

/** What a sequence must produce, run alone. */
export function expectedOutput(prompt: readonly number[], maxTokens: number): number[] {
  const ctx = prompt.slice();
  const out: number[] = [];
  while (out.length < maxTokens) {
    const t = nextToken(ctx);
    ctx.push(t);
    out.push(t);
  }
  return out;
}

/** [seqId, numTokens] per scheduled entry, in batch order (vLLM's {requestId -> numTokens} view). */
export function numScheduledTokens(out: SchedulerOutput): [string, number][] {
  return out.scheduled.map((s) => [s.seq.seqId, s.numTokens]);
}

export interface SimRequest {
  readonly id: string;
  readonly prompt: readonly number[];
  readonly maxTokens: number;
  readonly n?: number;
  readonly priority?: number;
  /** Step at which it arrives (default 0). */
  readonly arriveAt?: number;
  /** Step before which it is aborted (never when undefined). */
  readonly abortAt?: number;
}

export class Sim {
  readonly pool: BlockPool;
  readonly kv: KvCacheManager;
  readonly sched: Scheduler;
  readonly requests = new Map<string, Request>();
  readonly outputs: SchedulerOutput[] = [];
  private readonly kvTok: Int32Array;
  private readonly kvPos: Int32Array;
  private arrivals = 0;
  stepNo = 0;

  constructor(numBlocks: number, blockSize: number, cfg: SchedulerConfig, enableCaching = true) {
    this.pool = new BlockPool(numBlocks, blockSize, enableCaching);
    this.kv = new KvCacheManager(this.pool);
    this.sched = new Scheduler(cfg, this.kv);
    this.kvTok = new Int32Array(numBlocks * blockSize).fill(-1);
    this.kvPos = new Int32Array(numBlocks * blockSize).fill(-1);
  }

  add(r: SimRequest): Request {
    const req = new Request({
      requestId: r.id,
      promptTokenIds: r.prompt,
      params: samplingParams({ temperature: 0, maxTokens: r.maxTokens, n: r.n ?? 1 }),
      priority: r.priority ?? 0,
      arrivalOrder: this.arrivals++,
      arrivalTimeMs: this.stepNo,
    });
    this.requests.set(r.id, req);
    this.sched.addRequest(req);
    return req;
  }

  abort(id: string): void {
    this.sched.finishRequest(this.requests.get(id)!, 'abort');
  }

  /** One step: schedule, "run" (write + verify KV), update, stop on max tokens. */
  step(): SchedulerOutput {
    const out = this.sched.schedule();
    this.outputs.push(out);
    const bs = this.kv.blockSize;
    const slotOf = (seq: Sequence, p: number): number => seq.blockIds[Math.floor(p / bs)]! * bs + (p % bs);
    assert.ok(out.totalNumScheduledTokens <= this.sched.config.maxNumBatchedTokens, 'token budget exceeded');
    assert.ok(out.scheduled.length <= this.sched.config.maxNumSeqs, 'too many sequences');
    for (const s of out.scheduled) {
      for (let p = s.numComputedBefore; p < s.numComputedBefore + s.numTokens; p++) {
        const slot = slotOf(s.seq, p);
        this.kvTok[slot] = s.seq.tokenIds[p]!;
        this.kvPos[slot] = p;
      }
    }
    const sampled = new Map<Sequence, number>();
    for (const s of out.scheduled) {
      const end = s.numComputedBefore + s.numTokens;
      // Attention reads positions 0..end-1 through the block table: they must hold this sequence's tokens.
      for (let p = 0; p < end; p++) {
        const slot = slotOf(s.seq, p);
        assert.equal(this.kvPos[slot], p, `${s.seq.seqId}: slot of position ${p} holds position ${this.kvPos[slot]}`);
        assert.equal(this.kvTok[slot], s.seq.tokenIds[p], `${s.seq.seqId}: slot of position ${p} holds a foreign token`);
      }
      if (s.sample) sampled.set(s.seq, nextToken(s.seq.tokenIds.slice(0, end)));
    }
    this.sched.update(out, sampled);
    for (const seq of sampled.keys()) {
      if (!seq.isFinished && seq.numOutputTokens >= seq.request.params.maxTokens) this.sched.finish(seq, 'length');
    }
    this.stepNo++;
    this.checkInvariants();
    return out;
  }

  /** free + used = total; ref counts equal owners; only running sequences hold blocks. */
  checkInvariants(): void {
    const seqs: Sequence[] = [];
    for (const req of this.requests.values()) seqs.push(...req.sequences);
    checkKvInvariants(this.pool, seqs);
  }

  /** Run a scenario to completion; returns outputs per `${id}#${index}`. */
  run(reqs: readonly SimRequest[], maxSteps = 10_000): Map<string, number[]> {
    const pending = reqs.slice().sort((a, b) => (a.arriveAt ?? 0) - (b.arriveAt ?? 0));
    while (this.stepNo < maxSteps) {
      while (pending.length > 0 && (pending[0]!.arriveAt ?? 0) <= this.stepNo) this.add(pending.shift()!);
      for (const r of reqs) if (r.abortAt === this.stepNo && this.requests.has(r.id)) this.abort(r.id);
      if (pending.length === 0 && !this.sched.hasWork()) break;
      this.step();
    }
    assert.ok(this.stepNo < maxSteps, 'simulation did not finish');
    const res = new Map<string, number[]>();
    for (const req of this.requests.values()) for (const s of req.sequences) res.set(s.seqId, s.outputTokenIds);
    return res;
  }
}

/** KV invariants over every sequence that may hold blocks: free + used = total, refs = owners. */
export function checkKvInvariants(pool: BlockPool, seqs: readonly Sequence[]): void {
  const owners = new Map<number, number>();
  for (const seq of seqs) {
    if (seq.status !== 'running') assert.equal(seq.blockIds.length, 0, `${seq.seqId} (${seq.status}) holds blocks`);
    assert.equal(new Set(seq.blockIds).size, seq.blockIds.length, `${seq.seqId} holds a block twice`);
    for (const b of seq.blockIds) owners.set(b, (owners.get(b) ?? 0) + 1);
  }
  let used = 0;
  for (let b = 0; b < pool.numBlocks; b++) {
    assert.equal(pool.refCount(b), owners.get(b) ?? 0, `block ${b}: ref count vs owners`);
    if (pool.refCount(b) > 0) used++;
  }
  assert.equal(pool.numFreeBlocks + used, pool.numBlocks, 'free + used = total');
}
