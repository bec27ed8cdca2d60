// Peak RSS of loading a model on the CPU backend, in its own process: VmHWM above the pre-load
// RSS, over the backend's allocated bytes (weights + step workspace). Issue 2's target: <= 1.25.
//   node --import tsx bench/cpu/load-rss.ts DIR
import { readFileSync } from 'node:fs';
import { selectBackend } from '../../src/runtime/select.js';
import { loadModel } from '../../src/model/loader.js';

const hwmBytes = (): number => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const baseBytes = process.memoryUsage().rss;
const { backend } = selectBackend({ device: 'cpu', numThreads: 1 });
const { model } = await loadModel(process.argv[2]!, backend, { maxTokensPerStep: 128, maxLogitsPerStep: 1 });
const allocatedBytes = backend.memoryStats().allocatedBytes;
const mib = (b: number): number => Math.round(b / 2 ** 17) / 8;
console.log(
  JSON.stringify({
    baselineMiB: mib(baseBytes),
    peakMiB: mib(hwmBytes()),
    allocatedMiB: mib(allocatedBytes),
    peakAboveBaselineOverAllocated: Math.round(((hwmBytes() - baseBytes) / allocatedBytes) * 1000) / 1000,
  }),
);
model.dispose();
backend.dispose();
