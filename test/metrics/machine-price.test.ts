// The machine price when --usd-per-hour is absent: a GPU is priced from gpu-specs.ts by the name
// CUDA reports, a CPU per logical core, an unknown GPU at a generic price; the flag always wins.
// On the server, the assumed price reaches /metrics (source label), /version and the cost header.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACCELERATORS } from '../../src/metrics/gpu-specs.js';
import {
  acceleratorKeyForGpuName,
  assumedMachinePrice,
  CPU_USD_PER_CORE_HOUR,
  machinePrice,
  UNKNOWN_GPU_USD_PER_HOUR,
} from '../../src/metrics/machine-price.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';

test('GPU names CUDA reports map onto the price table', () => {
  const cases: [string, number | undefined, string | null][] = [
    ['NVIDIA H200', 143e9, 'h200'],
    ['NVIDIA H100 80GB HBM3', 85e9, 'h100'],
    ['NVIDIA A100-SXM4-80GB', 85e9, 'a100'],
    ['NVIDIA A100-SXM4-40GB', 42e9, 'a100-40g'],
    ['NVIDIA A100-PCIE-40GB', undefined, 'a100-40g'],
    ['NVIDIA L40S', 48e9, 'l40s'],
    ['NVIDIA L4', 24e9, 'l4'],
    ['NVIDIA A10G', 24e9, 'a10g'],
    ['NVIDIA GeForce RTX 4090', 24e9, 'rtx4090'],
    ['Tesla T4', 16e9, null],
  ];
  for (const [name, mem, key] of cases) assert.equal(acceleratorKeyForGpuName(name, mem), key, name);
  const h200 = assumedMachinePrice({ kind: 'gpu', name: 'NVIDIA H200' });
  assert.deepEqual([h200.usdPerHour, h200.source], [ACCELERATORS.h200!.usdPerHour, 'assumed']);
  assert.match(h200.basis, /NVIDIA H200.*gpu-specs/);
  assert.equal(assumedMachinePrice({ kind: 'gpu', name: 'Tesla T4' }).usdPerHour, UNKNOWN_GPU_USD_PER_HOUR);
});

test('CPU: per logical core; the flag wins, even at 0', () => {
  const cpu = assumedMachinePrice({ kind: 'cpu', numCores: 16 });
  assert.equal(cpu.usdPerHour, 16 * CPU_USD_PER_CORE_HOUR);
  assert.match(cpu.basis, /16 CPU cores x \$0\.045\/core-hour/);
  assert.deepEqual(machinePrice(2.5, { kind: 'gpu', name: 'NVIDIA H100' }), { usdPerHour: 2.5, source: 'flag', basis: '--usd-per-hour' });
  assert.equal(machinePrice(0, { kind: 'cpu', numCores: 8 }).usdPerHour, 0);
  assert.equal(machinePrice(undefined, { kind: 'cpu', numCores: 2 }).source, 'assumed');
});

test('/metrics: tokenmill_usd_per_hour carries the source label', async () => {
  const p = assumedMachinePrice({ kind: 'cpu', numCores: 2 });
  const m = new ServerMetrics({ modelName: 'tiny', usdPerHour: p.usdPerHour, priceSource: p.source, priceBasis: p.basis });
  assert.match((await m.render()).body, /tokenmill_usd_per_hour\{model_name="tiny",source="assumed"\} 0\.09\b/);
  const flagged = new ServerMetrics({ modelName: 'tiny', usdPerHour: 3 });
  assert.match((await flagged.render()).body, /tokenmill_usd_per_hour\{model_name="tiny",source="flag"\} 3\b/);
});
