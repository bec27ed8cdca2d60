// Peer plumbing without the peers: the transformers records get cost (cost.ts), GB/s and % of the
// GPU table's peak filled in; node-llama-cpp is optional (a missing package is a reason, not a crash).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { completePeerRecord, parsePeerLines } from '../../../bench/peers/transformers.js';
import { loadNodeLlamaCpp } from '../../../bench/peers/llama-cpp.js';
import { acceleratorForDeviceName } from '../../../src/metrics/bench/device-probes.js';
import { fakeRecord } from './fixtures.js';

test('transformers peer lines are completed with cost, bandwidth vs the H100 peak and J/token', () => {
  const line = {
    ...fakeRecord({
      kind: 'peer',
      engine: 'transformers-eager-sdpa',
      device: 'NVIDIA H100 80GB HBM3',
      concurrency: 2,
      inLen: 100,
      outLen: 100,
      wallS: 10,
      generatedTokens: 1000,
      avgPowerW: 350,
      usdPer1kTok: null,
      usdPer1MTok: null,
      gbPerS: null,
      pctPeak: null,
    }),
    decodeStepsPerS: 50,
  };
  const text = `noise\n${JSON.stringify(line)}\n${JSON.stringify({ schema: 'other' })}\n`;
  const lines = parsePeerLines(text);
  assert.equal(lines.length, 1);
  const r = completePeerRecord(lines[0]!, {
    usdPerHour: 3.6,
    weightBytes: 1e9,
    kvBytesPerToken: 1e4,
    commit: 'c0ffee',
    dirty: false,
    fingerprint: { id: 1 },
  });
  assert.ok(Math.abs(r.usdPer1kTok! - 0.01) < 1e-12); // 3.6 $/h x 10 s / 1k tokens
  assert.ok(Math.abs(r.usdPer1MTok! - 10) < 1e-9);
  assert.equal(r.bytesPerDecodeStep, 1e9 + 2 * 150 * 1e4);
  assert.ok(Math.abs(r.gbPerS! - 50.15) < 1e-9); // 50 steps/s x 1.003 GB
  assert.equal(r.peakGbPerS, 3350);
  assert.ok(Math.abs(r.pctPeak! - (100 * 50.15) / 3350) < 1e-9);
  assert.equal(r.joulesPerTok, 3.5); // 350 W x 10 s / 1000 tokens
  assert.equal(r.commit, 'c0ffee');
  assert.equal('decodeStepsPerS' in r, false);
});

test('GPU names map to the gpu-specs table', () => {
  assert.equal(acceleratorForDeviceName('NVIDIA H100 80GB HBM3')?.key, 'h100');
  assert.equal(acceleratorForDeviceName('NVIDIA H200')?.key, 'h200');
  assert.equal(acceleratorForDeviceName('NVIDIA A100-SXM4-40GB')?.key, 'a100-40g');
  assert.equal(acceleratorForDeviceName('NVIDIA L4')?.key, 'l4');
  assert.equal(acceleratorForDeviceName('Some CPU'), null);
});

test('node-llama-cpp absent: a reason, never a throw', async () => {
  const prev = process.env.TOKENMILL_NODE_LLAMA_CPP;
  process.env.TOKENMILL_NODE_LLAMA_CPP = '/nonexistent/node-llama-cpp';
  try {
    const { nlc, reason } = await loadNodeLlamaCpp();
    assert.equal(nlc, null);
    assert.match(reason, /not installed/);
  } finally {
    if (prev === undefined) delete process.env.TOKENMILL_NODE_LLAMA_CPP;
    else process.env.TOKENMILL_NODE_LLAMA_CPP = prev;
  }
});
