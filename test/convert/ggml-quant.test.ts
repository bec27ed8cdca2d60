// The ggml block formats: our writer (model/convert/ggml-quantize.ts) and our spec decoder
// (runtime/reference/ggml-dequant.ts) on seeded matrices with extreme scales, zero rows, spikes and
// tiny values: round-trip error within each format's bound, our decode equal bit for bit to an
// independent numpy decoder of the same GGUF file (test/convert/ggml_dequant_numpy.py; skipped with
// a reason where python3 has no numpy), and the to-gguf mixtures (Q4_K_M bumps, fallbacks).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSource, parseGguf } from '../../src/model/convert/gguf-reader.js';
import { writeGguf, type GgufTensorToWrite } from '../../src/model/convert/gguf-writer.js';
import { quantizeMatrix } from '../../src/model/convert/ggml-quantize.js';
import { tensorType, useMoreBits } from '../../src/model/convert/ggml-mixture.js';
import { GGML_QUANT_TYPES, ggmlRowBytes, type GgmlQuantType } from '../../src/runtime/ggml-format.js';
import { dequantizeRow } from '../../src/runtime/reference/ggml-dequant.js';
import { hostileMatrix } from './ggml-fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'tm-ggml-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Relative RMS error bound per format on N(0, 1)-like rows (measured ~0.6x of these). */
const BOUND: Record<GgmlQuantType, number> = {
  Q8_0: 0.01,
  Q4_0: 0.15,
  Q4_1: 0.15,
  Q5_0: 0.07,
  Q5_1: 0.07,
  Q4_K: 0.12,
  Q5_K: 0.06,
  Q6_K: 0.03,
};

function decodeAll(type: GgmlQuantType, bytes: Uint8Array, N: number, K: number): Float32Array {
  const y = new Float32Array(N * K);
  for (let n = 0; n < N; n++) dequantizeRow(type, bytes, n * ggmlRowBytes(type, K), K, y, n * K);
  return y;
}

describe('ggml block formats', () => {
  for (const type of GGML_QUANT_TYPES) {
    it(`${type}: quantize -> decode within the format's error bound; zero rows exact`, () => {
      const K = 512,
        N = 14;
      const x = hostileMatrix(N, K, 7);
      const y = decodeAll(type, quantizeMatrix(type, x, N, K), N, K);
      for (let n = 0; n < N; n++) {
        let e = 0,
          m = 0;
        for (let k = 0; k < K; k++) {
          e += (x[n * K + k]! - y[n * K + k]!) ** 2;
          m += x[n * K + k]! ** 2;
        }
        if (m === 0) {
          assert.equal(e, 0, `${type} row ${n}: zero row decodes to zeros`);
          continue;
        }
        // tiny (1e-3) rows: the f16 scales are subnormal, a few bits coarser
        const bound = BOUND[type] * (n % 7 === 2 ? 2 : 1);
        assert.ok(Math.sqrt(e / m) <= bound, `${type} row ${n} (kind ${n % 7}): rel rms ${Math.sqrt(e / m)} > ${bound}`);
      }
    });
  }

  it('mixtures: Q4_K_M gives attn_v / ffn_down Q6_K on use_more_bits layers, output Q6_K, fallbacks', () => {
    const role = (name: string, K = 512, tied = false) => ({ name, shape: [64, K], numLayers: 16, tied });
    assert.deepEqual(
      [...Array(16).keys()].filter((l) => useMoreBits(l, 16)),
      [0, 1, 4, 7, 10, 13, 14, 15],
    );
    assert.equal(tensorType('q4_k_m', role('blk.0.attn_v.weight')), 'Q6_K');
    assert.equal(tensorType('q4_k_m', role('blk.2.attn_v.weight')), 'Q4_K');
    assert.equal(tensorType('q4_k_m', role('blk.4.ffn_down.weight')), 'Q6_K');
    assert.equal(tensorType('q4_k_m', role('blk.4.attn_q.weight')), 'Q4_K');
    assert.equal(tensorType('q4_k_m', role('output.weight')), 'Q6_K');
    assert.equal(tensorType('q4_k_m', role('token_embd.weight')), 'Q4_K');
    assert.equal(tensorType('q4_k_m', role('token_embd.weight', 512, true)), 'Q6_K');
    assert.equal(tensorType('q4_k_m', role('blk.3.attn_q.weight', 288)), 'Q5_0');
    assert.equal(tensorType('q5_k_m', role('blk.3.attn_q.weight', 288)), 'Q5_1');
    assert.equal(tensorType('q6_k', role('blk.3.attn_q.weight', 288)), 'Q8_0');
    assert.equal(tensorType('q4_k_m', role('blk.3.attn_q.weight', 40)), 'F16');
    assert.equal(tensorType('q4_0', role('output.weight', 64)), 'Q8_0');
    assert.equal(tensorType('q4_0', role('output.weight', 512)), 'Q6_K');
    assert.equal(tensorType('q8_0', role('output.weight', 512)), 'Q8_0');
    assert.equal(tensorType('q4_0', { name: 'blk.0.attn_norm.weight', shape: [64], numLayers: 1, tied: false }), 'F32');
  });

  const numpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
  const noNumpy =
    numpy.status === 0
      ? false
      : `python3 with numpy unavailable (${(numpy.stderr || numpy.error?.message || '').trim().split('\n').pop()})`;
  it('our decode equals an independent numpy decoder bit for bit (every type, hostile rows, from one GGUF file)', { skip: noNumpy }, () => {
    const N = 14,
      K = 768; // 768 = 3 K-blocks, 24 legacy blocks
    const file = join(work, 'all-types.gguf');
    const mats = new Map<string, { type: GgmlQuantType; bytes: Uint8Array }>();
    GGML_QUANT_TYPES.forEach((type, i) => mats.set(`t.${type}`, { type, bytes: quantizeMatrix(type, hostileMatrix(N, K, 100 + i), N, K) }));
    const tensors: GgufTensorToWrite[] = [...mats].map(([name, m]) => ({ name, shape: [N, K], type: m.type, data: () => m.bytes }));
    writeGguf(file, [{ key: 'general.architecture', type: 'str', value: 'none' }], tensors);
    const out = join(work, 'np');
    spawnSync('mkdir', ['-p', out]);
    const py = spawnSync('python3', [join(process.cwd(), 'test', 'convert', 'ggml_dequant_numpy.py'), file, out], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { name: string; file: string }[];
    assert.equal(index.length, GGML_QUANT_TYPES.length);
    const src = fileSource(file);
    try {
      const g = parseGguf(src, file);
      for (const e of index) {
        const info = g.tensors.get(e.name)!;
        const type = mats.get(e.name)!.type;
        const ours = decodeAll(type, src.read(info.fileOffset, info.sizeBytes).slice(), N, K);
        const theirs = new Float32Array(readFileSync(join(out, e.file)).buffer.slice(0));
        assert.equal(theirs.length, ours.length, e.name);
        const u1 = new Uint32Array(ours.buffer),
          u2 = new Uint32Array(theirs.buffer);
        const bad = u1.findIndex((v, i) => v !== u2[i]);
        assert.equal(bad, -1, `${type}: element ${bad} ours ${ours[bad]} numpy ${theirs[bad]}`);
      }
    } finally {
      src.close();
    }
  });
});
