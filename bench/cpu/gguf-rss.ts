// Process memory of a GGUF model on the CPU backend: /proc/self/status RSS split into anonymous
// (private heap: copies of the weights count here) and file-backed (the mapped file's page-cache pages,
// shared with every process mapping it and with the page cache itself), after load and after a few
// greedy tokens (which touch every weight). Also prints the greedy token ids, so two runs (mmap and
// TOKENMILL_GGUF_MMAP=0-style read path, --no-mmap) can be compared. Linux only. NOT a test.
// Usage: node --import tsx bench/cpu/gguf-rss.ts <file.gguf> [--no-mmap] [--tokens 8] [--threads 1]
import { readFileSync } from 'node:fs';
import { generate } from '../../src/engine/generate.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { createCpuBackend } from '../../src/runtime/select.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}

/** VmRSS, RssAnon, RssFile in MiB. */
function rss(): { rssMiB: number; anonMiB: number; fileMiB: number } {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  const mib = (k: string): number => Math.round(kb(k) / 102.4) / 10;
  return { rssMiB: mib('VmRSS'), anonMiB: mib('RssAnon'), fileMiB: mib('RssFile') };
}

const file = process.argv[2];
if (file === undefined || file.startsWith('--')) throw new Error('usage: gguf-rss.ts <file.gguf> [--no-mmap] [--tokens N]');
const mmap = !process.argv.includes('--no-mmap');
const backend = createCpuBackend({ numThreads: Number(arg('threads', '1')), mmap });
const before = rss();
const { model } = await loadModel(file, backend);
globalThis.gc?.();
const loaded = rss();
const ids: number[] = [];
const params = samplingParams({ temperature: 0, maxTokens: Number(arg('tokens', '8')), ignoreEos: true });
for await (const ev of generate(model, null, [1, 5, 9, 2], { params })) ids.push(...ev.tokenIds);
globalThis.gc?.();
const generated = rss();
const mem = backend.memoryStats();
console.log(
  JSON.stringify({
    file,
    mmap,
    allocatedMiB: Math.round(mem.allocatedBytes / 104857.6) / 10,
    mappedMiB: Math.round((mem.mappedBytes ?? 0) / 104857.6) / 10,
    before,
    loaded,
    generated,
    ids,
  }),
);
model.dispose();
backend.dispose();
