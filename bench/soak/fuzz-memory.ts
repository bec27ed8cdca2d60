// Memory under a fuzz of bad requests: starts `tokenmill serve` on a tiny random model (loopback),
// warms it up, fires seeded bad/odd requests (fuzz-requests.ts) for --seconds, then idles for
// --idle-seconds, sampling the server's RSS (/proc) and its heap breakdown (/metrics) every second.
// Pass: growth over the warm-up level < --max-growth-mb during load, and back within
// --settle-mb of the warm-up level after the idle period. RSS is memory, not timing: a loaded
// machine changes how many requests run, not what each one may keep.
//
//   node --import tsx bench/soak/fuzz-memory.ts [--seconds 60] [--idle-seconds 30] [--concurrency 16] [--seed N]
//     [--big-share 0.08] [--no-big-chat] [--kv-cache-memory 40MiB] [--server-node-options "--max-semi-space-size=..."] [--out FILE.json]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { Xoshiro128 } from '../../src/model/prng.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { fuzzRequest, type FuzzRequest } from './fuzz-requests.js';

const { values: a } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'idle-seconds': { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '16' },
    seed: { type: 'string', default: '20261202' },
    'kv-cache-memory': { type: 'string', default: '40MiB' },
    'body-limit': { type: 'string', default: '2MiB' },
    'server-node-options': { type: 'string', default: '' },
    out: { type: 'string' },
    'max-growth-mb': { type: 'string', default: '150' },
    'settle-mb': { type: 'string', default: '50' },
    'big-share': { type: 'string', default: '0.08' },
    'no-big-chat': { type: 'boolean', default: false },
  },
});
const MB = 1024 * 1024;
const BODY_LIMIT = 2 * MB;

interface Sample {
  tS: number;
  phase: 'warm' | 'load' | 'idle';
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
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

async function startServer(dir: string): Promise<{ child: ChildProcess; port: number }> {
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
    a['kv-cache-memory']!,
    '--metrics-public',
    '--max-body-bytes',
    a['body-limit']!,
  ];
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${a['server-node-options']}`.trim() };
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}) before listening:\n${out}`)));
  });
  return { child, port };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tm-fuzzmem-'));
  writeRandomModel(dir, { ...MODEL_PRESETS['tiny-llama']!.config, max_position_embeddings: 1024 }, { seed: 20240601 });
  const { child, port } = await startServer(dir);
  const pid = child.pid!;
  const t0 = Date.now();
  const samples: Sample[] = [];
  let phase: Sample['phase'] = 'warm';
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
    const r = new Xoshiro128(Number(a.seed));
    const endAt = Date.now() + Number(a.seconds) * 1000;
    let numSent = 0;
    const worker = async (): Promise<void> => {
      while (Date.now() < endAt) {
        const s = await send(port, fuzzRequest(r, BODY_LIMIT, { bigShare: Number(a['big-share']), bigChat: !a['no-big-chat'] }));
        numSent++;
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
      }
    };
    const sampler = setInterval(() => void sample(), 1000);
    await Promise.all(Array.from({ length: Number(a.concurrency) }, worker));
    phase = 'idle';
    await new Promise((res) => setTimeout(res, Number(a['idle-seconds']) * 1000));
    clearInterval(sampler);
    await sample();
    const load = samples.filter((s) => s.phase === 'load');
    const peak = load.reduce((m, s) => (s.rssMb > m.rssMb ? s : m), load[0] ?? warm);
    const last = samples.at(-1)!;
    const growthMb = peak.rssMb - warm.rssMb;
    const settleMb = last.rssMb - warm.rssMb;
    const num5xx = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    const pass = growthMb < Number(a['max-growth-mb']) && settleMb < Number(a['settle-mb']) && num5xx === 0;
    const summary = {
      bench: 'fuzz-memory',
      seed: Number(a.seed),
      seconds: Number(a.seconds),
      concurrency: Number(a.concurrency),
      numSent,
      statuses: Object.fromEntries(statuses),
      warmRssMb: warm.rssMb,
      peakRssMb: peak.rssMb,
      endOfLoadRssMb: load.at(-1)?.rssMb,
      afterIdleRssMb: last.rssMb,
      growthMb,
      settleMb,
      num5xx,
      pass,
      peak,
      last,
    };
    process.stdout.write(`${JSON.stringify({ ...summary, samples: undefined })}\n`);
    for (const s of samples)
      process.stdout.write(
        `${s.tS.toFixed(0)}s ${s.phase} rss ${s.rssMb.toFixed(0)} heap ${s.heapUsedMb.toFixed(0)}/${s.heapTotalMb.toFixed(0)} ` +
          `ext ${s.externalMb.toFixed(0)} ab ${s.arrayBuffersMb.toFixed(0)}\n`,
      );
    if (a.out !== undefined) writeFileSync(a.out, JSON.stringify({ ...summary, samples }, null, 1));
    process.exitCode = pass ? 0 : 1;
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
