// The memory fuzz itself (fuzz-memory.ts is its command line; the CI-sized test calls it too):
// starts `tokenmill serve` on a tiny random model (loopback, 2 MiB body limit), warms it up, fires
// seeded bad/odd requests (fuzz-requests.ts) for `seconds`, idles for `idleSeconds`, and samples the
// server's RSS (/proc) and heap breakdown (/metrics) every second.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { Xoshiro128 } from '../../src/model/prng.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { type FuzzRequest, fuzzRequest } from './fuzz-requests.js';

export interface FuzzMemoryOptions {
  readonly seconds: number;
  readonly idleSeconds: number;
  readonly concurrency: number;
  readonly seed: number;
  /** Share of bodies near the body limit (default 0.08) and whether big chat bodies are among them. */
  readonly bigShare?: number;
  readonly bigChat?: boolean;
  readonly kvCacheMemory?: string;
  /** Extra NODE_OPTIONS for the server (e.g. --max-semi-space-size=16 to study GC sizing). */
  readonly serverNodeOptions?: string;
  /** The server's --idle-memory-release (seconds; absent: its default, 10). */
  readonly idleMemoryReleaseSeconds?: number;
  /** Write a V8 heap snapshot of the server into this folder once idle (it forces a full GC first). */
  readonly snapshotDir?: string;
}

export interface FuzzMemoryResult {
  readonly seed: number;
  readonly seconds: number;
  readonly concurrency: number;
  readonly numSent: number;
  /** HTTP status -> count; -1: connection error, -2: the client hung up on purpose. */
  readonly statuses: Record<number, number>;
  readonly warmRssMb: number;
  readonly peakRssMb: number;
  readonly endOfLoadRssMb: number;
  readonly afterIdleRssMb: number;
  /** Peak under load and after idling, over the warm-up level. */
  readonly growthMb: number;
  readonly settleMb: number;
  readonly num5xx: number;
  readonly peak: MemorySample;
  readonly last: MemorySample;
  readonly samples: readonly MemorySample[];
}

const MB = 1024 * 1024;
const BODY_LIMIT = 2 * MB;

export interface MemorySample {
  tS: number;
  phase: 'warm' | 'load' | 'idle';
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  /** V8 heap spaces' committed size (MB): new, old, code, large_object, ... */
  spacesMb: Record<string, number>;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function send(port: number, f: FuzzRequest): Promise<number> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...f.headers };
    const payload = f.body === null ? null : Buffer.from(f.body, 'utf8');
    if (payload !== null) headers['content-length'] = payload.byteLength;
    const req = request({ host: '127.0.0.1', port, method: f.method, path: f.path, headers, agent: false }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(-1));
    });
    req.on('error', () => resolve(-1));
    if (f.abortAfterMs !== null)
      setTimeout(() => {
        req.destroy();
        resolve(-2);
      }, f.abortAfterMs);
    req.end(payload ?? undefined);
  });
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        s += c;
      });
      res.on('end', () => resolve(s));
    });
    req.on('error', reject);
    req.end();
  });
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) / MB : NaN;
}

function heapSpaces(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^nodejs_heap_space_size_total_bytes\{space="(\w+)"\} ([0-9.e+-]+)$/gm)) out[m[1]!] = Number(m[2]) / MB;
  return out;
}

async function startServer(dir: string, o: FuzzMemoryOptions): Promise<{ child: ChildProcess; port: number }> {
  const args = [
    'bin/tokenmill.js',
    'serve',
    '--model',
    dir,
    '--served-model-name',
    'tiny',
    '--port',
    '0',
    '--device',
    'cpu',
    '--threads',
    '1',
    '--kv-cache-memory',
    o.kvCacheMemory ?? '40MiB',
    '--metrics-public',
    '--max-body-bytes',
    String(BODY_LIMIT),
    ...(o.idleMemoryReleaseSeconds === undefined ? [] : ['--idle-memory-release', String(o.idleMemoryReleaseSeconds)]),
  ];
  const snap = o.snapshotDir === undefined ? '' : `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${o.snapshotDir}`;
  const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} ${o.serverNodeOptions ?? ''} ${snap}`.trim();
  const env = { ...process.env, NODE_OPTIONS: nodeOptions };
  // stderr is kept short: the fuzz invents field names the server logs (bounded, but noisy).
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let errTail = '';
  child.stderr!.on('data', (c: Buffer) => {
    errTail = (errTail + c.toString()).slice(-4000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}) before listening:\n${out}\n${errTail}`)));
  });
  return { child, port };
}

/** The snapshot's own full GC shows what idle memory is garbage: the sample after it is post-GC. */
async function snapshotAtIdle(pid: number, dir: string, sample: () => Promise<void>): Promise<void> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const added = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (added.length > 0 && statSync(join(dir, added[0]!)).size > 0) break;
  }
  await new Promise((r) => setTimeout(r, 2000));
  await sample();
}

/** Run one fuzz against a fresh `tokenmill serve`; the server is killed afterwards. */
export async function runFuzzMemory(o: FuzzMemoryOptions): Promise<FuzzMemoryResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tm-fuzzmem-'));
  writeRandomModel(dir, { ...MODEL_PRESETS['tiny-llama']!.config, max_position_embeddings: 1024 }, { seed: 20240601 });
  const { child, port } = await startServer(dir, o);
  const pid = child.pid!;
  const t0 = Date.now();
  const samples: MemorySample[] = [];
  let phase: MemorySample['phase'] = 'warm';
  const sample = async (): Promise<void> => {
    const rssMb = rssOf(pid);
    const text = await get(port, '/metrics').catch(() => '');
    samples.push({
      tS: (Date.now() - t0) / 1000,
      phase,
      rssMb,
      heapUsedMb: metric(text, 'nodejs_heap_size_used_bytes'),
      heapTotalMb: metric(text, 'nodejs_heap_size_total_bytes'),
      externalMb: metric(text, 'nodejs_external_memory_bytes'),
      arrayBuffersMb: metric(text, 'tokenmill_process_array_buffers_bytes'),
      spacesMb: heapSpaces(text),
    });
  };
  const statuses = new Map<number, number>();
  try {
    // Warm-up: the paths a well-behaved client takes (JIT, template worker, pools), then settle.
    for (let i = 0; i < 40; i++) {
      const chat = i % 2 === 0;
      const body = JSON.stringify(
        chat
          ? { model: 'tiny', messages: [{ role: 'user', content: `hello ${i}` }], max_tokens: 4, stream: i % 4 === 0 }
          : { model: 'tiny', prompt: `hello ${i}`, max_tokens: 4, logprobs: 2 },
      );
      await send(port, {
        method: 'POST',
        path: chat ? '/v1/chat/completions' : '/v1/completions',
        headers: { 'content-type': 'application/json' },
        body,
        abortAfterMs: null,
      });
    }
    for (let i = 0; i < 5; i++) {
      await sample();
      await new Promise((r) => setTimeout(r, 1000));
    }
    const warm = samples.at(-1)!;
    phase = 'load';
    const r = new Xoshiro128(o.seed);
    const endAt = Date.now() + o.seconds * 1000;
    let numSent = 0;
    const worker = async (): Promise<void> => {
      while (Date.now() < endAt) {
        const s = await send(port, fuzzRequest(r, BODY_LIMIT, { bigShare: o.bigShare ?? 0.08, bigChat: o.bigChat ?? true }));
        numSent++;
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
      }
    };
    const sampler = setInterval(() => void sample(), 1000);
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    phase = 'idle';
    await new Promise((res) => setTimeout(res, o.idleSeconds * 1000));
    clearInterval(sampler);
    await sample();
    const last = samples.at(-1)!;
    if (o.snapshotDir !== undefined) await snapshotAtIdle(pid, o.snapshotDir, sample);
    const load = samples.filter((s) => s.phase === 'load');
    const peak = load.reduce((m, s) => (s.rssMb > m.rssMb ? s : m), load[0] ?? warm);
    const growthMb = peak.rssMb - warm.rssMb;
    const settleMb = last.rssMb - warm.rssMb;
    const num5xx = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    return {
      seed: o.seed,
      seconds: o.seconds,
      concurrency: o.concurrency,
      numSent,
      statuses: Object.fromEntries(statuses),
      warmRssMb: warm.rssMb,
      peakRssMb: peak.rssMb,
      endOfLoadRssMb: load.at(-1)?.rssMb ?? warm.rssMb,
      afterIdleRssMb: last.rssMb,
      growthMb,
      settleMb,
      num5xx,
      peak,
      last,
      samples,
    };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
