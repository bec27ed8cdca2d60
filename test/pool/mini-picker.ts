// A small endpoint picker for tests only (tokenmill has no router of its own): what the inference
// gateway's picker does with a pool of tokenmill replicas, reduced to its inputs. It scrapes each
// replica's --metrics-port every 50 ms (queue, running, block size) and polls /ready, subscribes to
// their KV events (a SUB socket the replicas connect to, as to a central indexer) and keeps a
// per-replica index of cached blocks keyed by its own chain hash of the blocks' token ids (as llm-d
// does: engine hashes only map to its keys). A request is rendered to token ids on a replica's
// render route, then scored: 2 x the share of its full blocks cached on a replica (longest prefix)
// + 1 x the queue score; or round-robin over ready replicas. A 503 or a refused connection marks the
// replica unready and the request goes to another one, as a gateway retries.

import { createHash } from 'node:crypto';
import { decode } from '@msgpack/msgpack';
import type { Subscriber } from 'zeromq';

export interface Replica {
  readonly url: string;
  readonly metricsUrl: string;
  /** The topic's pod id: host:port of the API. */
  readonly podId: string;
}

interface ReplicaState {
  readonly r: Replica;
  ready: boolean;
  load: number;
  blockSize: number;
  readonly keys: Set<string>;
  readonly engineToKey: Map<bigint, string>;
  numRouted: number;
}

const ROOT = 'root';
const chainKey = (parent: string, tokens: readonly number[]): string =>
  createHash('sha1')
    .update(`${parent}|${tokens.join(',')}`)
    .digest('hex');

export class MiniPicker {
  private readonly states: ReplicaState[] = [];
  private timer: NodeJS.Timeout | null = null;
  private rr = 0;
  numKvBatches = 0;

  /** Routing policy; switchable between runs (the KV index keeps being fed either way). */
  mode: 'prefix' | 'round-robin' = 'prefix';

  constructor(private readonly sub: Subscriber) {
    void this.readEvents();
  }

  get kvEndpoint(): string {
    return this.sub.lastEndpoint!;
  }

  add(r: Replica): void {
    this.states.push({ r, ready: true, load: 0, blockSize: 16, keys: new Set(), engineToKey: new Map(), numRouted: 0 });
  }

  routedTo(podId: string): number {
    return this.states.find((s) => s.r.podId === podId)?.numRouted ?? 0;
  }

  isReady(podId: string): boolean {
    return this.states.find((s) => s.r.podId === podId)?.ready ?? false;
  }

  cachedBlocks(podId: string): number {
    return this.states.find((s) => s.r.podId === podId)?.keys.size ?? 0;
  }

  start(intervalMs = 50): void {
    const tick = async () => {
      await Promise.all(this.states.map((s) => this.refresh(s)));
      if (this.timer !== null) this.timer = setTimeout(tick, intervalMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async refresh(s: ReplicaState): Promise<void> {
    try {
      const [m, ready] = await Promise.all([fetch(s.r.metricsUrl).then((x) => x.text()), fetch(`${s.r.url}/ready`)]);
      s.ready = ready.status === 200;
      const num = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(m)?.[1] ?? 0);
      s.load = num('tokenmill_num_requests_waiting') + num('tokenmill_num_requests_running');
      const bs = /^tokenmill_cache_config_info\{[^}]*block_size="(\d+)"/m.exec(m);
      if (bs) s.blockSize = Number(bs[1]);
    } catch {
      s.ready = false; // gone (drained and exited)
    }
  }

  private async readEvents(): Promise<void> {
    try {
      for await (const [topic, , payload] of this.sub) {
        const podId = String(topic).split('@')[1];
        const s = this.states.find((x) => x.r.podId === podId);
        this.numKvBatches++;
        if (s === undefined) continue;
        const [, events] = decode(payload!, { useBigInt64: true }) as [number, unknown[][]];
        for (const e of events) this.apply(s, e);
      }
    } catch {
      // socket closed
    }
  }

  private apply(s: ReplicaState, e: unknown[]): void {
    if (e[0] === 'AllBlocksCleared') {
      s.keys.clear();
      s.engineToKey.clear();
    } else if (e[0] === 'BlockRemoved') {
      for (const h of e[1] as bigint[]) {
        const k = s.engineToKey.get(h);
        if (k !== undefined) s.keys.delete(k);
        s.engineToKey.delete(h);
      }
    } else if (e[0] === 'BlockStored') {
      const [, hashes, parent, tokens, blockSize] = e as [string, bigint[], bigint | null, number[], number];
      let key = parent === null ? ROOT : s.engineToKey.get(parent);
      if (key === undefined) return; // parent unknown (its event was missed): cannot place the chain
      hashes.forEach((h, i) => {
        key = chainKey(key!, tokens.slice(i * blockSize, (i + 1) * blockSize));
        s.engineToKey.set(h, key);
        s.keys.add(key);
      });
    }
  }

  private score(s: ReplicaState, tokens: readonly number[], maxLoad: number): number {
    const numFull = Math.floor(tokens.length / s.blockSize);
    let key = ROOT;
    let hit = 0;
    for (let i = 0; i < numFull; i++) {
      key = chainKey(key, tokens.slice(i * s.blockSize, (i + 1) * s.blockSize));
      if (!s.keys.has(key)) break;
      hit++;
    }
    const prefix = numFull === 0 ? 0 : hit / numFull;
    const queue = maxLoad === 0 ? 1 : 1 - s.load / maxLoad;
    return 2 * prefix + queue;
  }

  private async choose(body: Record<string, unknown>, exclude: Set<ReplicaState>): Promise<ReplicaState | null> {
    const ready = this.states.filter((s) => s.ready && !exclude.has(s));
    if (ready.length === 0) return null;
    if (this.mode === 'round-robin') return ready[this.rr++ % ready.length]!;
    const tokens = await this.render(ready, body);
    const maxLoad = Math.max(...ready.map((s) => s.load));
    let best = ready[0]!;
    for (const s of ready) if (this.score(s, tokens, maxLoad) > this.score(best, tokens, maxLoad)) best = s;
    return best;
  }

  /** The prompt's token ids from the first ready replica that renders it (none: score by load only). */
  private async render(ready: readonly ReplicaState[], body: Record<string, unknown>): Promise<number[]> {
    for (const s of ready) {
      try {
        const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
        const r = await fetch(`${s.r.url}/v1/completions/render`, init);
        if (r.ok) return ((await r.json()) as { token_ids: number[] }[])[0]!.token_ids;
      } catch {
        // gone: try the next one
      }
    }
    return [];
  }

  /** Route one completions request; retries on another replica when one refuses (503) or is gone. */
  async complete(body: Record<string, unknown>): Promise<{ status: number; json: unknown; podId: string | null }> {
    const tried = new Set<ReplicaState>();
    let last: { status: number; json: unknown; podId: string | null } = { status: 503, json: null, podId: null };
    for (let attempt = 0; attempt < 4; attempt++) {
      const s = await this.choose(body, tried);
      if (s === null) break;
      tried.add(s);
      s.numRouted++;
      try {
        const r = await fetch(`${s.r.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        last = { status: r.status, json: await r.json(), podId: s.r.podId };
        if (r.status !== 503) return last;
      } catch {
        last = { status: 599, json: null, podId: s.r.podId };
      }
      s.ready = false; // draining or gone: leave it until the next scrape says otherwise
    }
    return last;
  }
}
