// `tokenmill plan` end to end: text and --json output on a Llama-2-7B config, --measured against a
// bench record, and usage errors (unknown --gpu, bad dtype) exiting 2.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './cli-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'tm-plan-'));
after(() => rmSync(work, { recursive: true, force: true }));
const config = join(work, 'config.json');
writeFileSync(
  config,
  JSON.stringify({
    architectures: ['LlamaForCausalLM'],
    hidden_size: 4096,
    intermediate_size: 11008,
    num_attention_heads: 32,
    num_hidden_layers: 32,
    num_key_value_heads: 32,
    vocab_size: 32000,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    torch_dtype: 'float16',
  }),
);

describe('tokenmill plan', () => {
  it('prints parameters, KV per token, max sequences and the roofline table', async () => {
    const r = await runCli(['plan', '--model', work, '--gpu', 'h100', '--usd-per-hour', '2.5']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /params\s+6,738,415,616/);
    assert.match(r.stdout, /kv\/token\s+524,288 bytes in bf16/);
    assert.match(r.stdout, /max seqs\s+27 concurrent sequences at context 4,096/);
    assert.match(r.stdout, /reserve 8\.00 GB \(10%\)/);
    assert.match(r.stdout, /price\s+\$2\.5\/h/);
    assert.match(r.stdout, /datasheet figures/);
    for (const b of [1, 2, 4, 8, 16, 32, 64, 128, 256])
      assert.match(r.stdout, new RegExp(`^\\s+${b}\\s+[\\d,.]+\\s+[\\d.]+\\s+(memory|compute)`, 'm'));
  });

  it('--json: the full plan, and --measured prints the ratio', async () => {
    const record = join(work, 'bench.json');
    writeFileSync(record, JSON.stringify({ engine: 'tokenmill-cuda', batch: 1, inLen: 128, outLen: 256, tokPerS: 100 }));
    const r = await runCli([
      'plan',
      '--model',
      config,
      '--gpu',
      'a100',
      '--context',
      '2048',
      '--dtype',
      'f16',
      '--measured',
      record,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      plan: {
        params: { total: number };
        kvBytesPerToken: number;
        contextLen: number;
        decode: { batch: number; tokPerS: number; usdPer1MTokens: number }[];
      };
      accelerator: { key: string; usdPerHour: number };
      kvDType: string;
      measured: { batch: number; contextLen: number; ratio: number; estimatedTokPerS: number }[];
    };
    assert.equal(j.plan.params.total, 6_738_415_616);
    assert.equal(j.plan.kvBytesPerToken, 524_288);
    assert.equal(j.plan.contextLen, 2048);
    assert.equal(j.kvDType, 'f16');
    assert.equal(j.accelerator.key, 'a100');
    assert.equal(j.plan.decode.length, 9);
    assert.equal(j.measured.length, 1);
    assert.equal(j.measured[0]!.contextLen, 256);
    assert.ok(Math.abs(j.measured[0]!.ratio - 100 / j.measured[0]!.estimatedTokPerS) < 1e-12);
    const text = await runCli(['plan', '--model', config, '--gpu', 'a100', '--measured', record]);
    assert.match(
      text.stdout,
      /measured vs estimate\n\s+tokenmill-cuda: batch 1, context 256: measured 100 tok\/s, estimate [\d,.]+ tok\/s, ratio \d+\.\d\d/,
    );
  });

  it('usage errors exit 2 with a one-line message', async () => {
    const gpu = await runCli(['plan', '--model', config, '--gpu', 'tpu-v5']);
    assert.equal(gpu.code, 2);
    assert.match(gpu.stderr, /error \[invalid_argument\]: --gpu: 'tpu-v5' is not one of h100, h200/);
    const dtype = await runCli(['plan', '--model', config, '--gpu', 'l4', '--dtype', 'fp8']);
    assert.equal(dtype.code, 2);
    const missing = await runCli(['plan', '--model', join(work, 'nope'), '--gpu', 'l4']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /file_not_found/);
    const measured = await runCli(['plan', '--model', config, '--gpu', 'l4', '--measured', config]);
    assert.equal(measured.code, 2);
    assert.match(measured.stderr, /no record with a tokPerS/);
  });
});
