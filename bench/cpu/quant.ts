// The quantized section of `npm run bench:cpu` (also runnable alone): tokenmill vs llama.cpp on the
// same GGUF files written by `convert to-gguf --type`, decode tok/s at batch 1 after a 128-token
// prompt and prefill tok/s, per (shape, type, threads); runs alternate tokenmill / llama.cpp one rep
// at a time (each in its own process: bench/cpu/measure.ts, bench/cpu/quant-peer.ts), median of
// --reps with min/max; decode GB/s = bytes of the matrices read per token x tok/s, against this
// machine's streaming bandwidth measured in the same run. Shapes: stories110M, and Llama-3.2-1B
// (dim 2048, 16 layers, GQA 32/8, vocab 128256, tied), seeded random bf16 weights; files are cached
// in bench/out. With q8_0 the row also has tokenmill's own weight-only int8 (--quantize int8,
// per-channel scales, int16-rounded activations) on the same weights: `int8` (the #16 prefill comparison).
// Options: --models stories110M,llama-3.2-1B --types q8_0,q4_k_m --threads 1,2
// --reps 5 --gen 64 --streams 32 (0: skip the multi-stream row). A tiny smoke: --models tiny --types q8_0
// --threads 1 --reps 1 --gen 8 --streams 4. The streams row: total output tok/s with --streams sequences
// in flight, tokenmill's Engine vs llama.cpp with that many sequences in one context
// (bench/cpu/quant-streams.ts, both engines per rep in one process, --reps reps). NOT a test.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import type { GgufQuantOption } from '../../src/model/convert/ggml-mixture.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';

const SHAPES: Record<string, Record<string, unknown>> = {
  tiny: {
    ...MODEL_PRESETS['tiny-llama']!.config,
    hidden_size: 256,
    intermediate_size: 512,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
  },
  'stories110M': MODEL_PRESETS.stories110M!.config as Record<string, unknown>,
  'llama-3.2-1B': {
    architectures: ['LlamaForCausalLM'],
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    vocab_size: 128256,
    max_position_embeddings: 4096,
    rope_theta: 500000,
    tie_word_embeddings: true,
    rms_norm_eps: 1e-5,
  },
};

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}

export interface QuantRow {
  readonly model: string;
  readonly type: string;
  readonly threads: number;
  readonly tokenmill: { decode: Stat; prefill: Stat } | { error: string };
  readonly llamaCpp: { decode: Stat; prefill: Stat } | { error: string };
  readonly weightBytesPerToken: number | null;
  readonly decodeGbPerS: { tokenmill: number | null; llamaCpp: number | null };
  readonly speedup: number | null;
  /** Total output tok/s with `streams` sequences (median over reps), or null when not measured. */
  readonly streams: StreamsRow | null;
  /** q8_0 rows: tokenmill --quantize int8 on the source weights (prefill / decode tok/s), else null. */
  readonly int8: { decode: Stat; prefill: Stat; prefillVsLlamaCpp: number | null } | { error: string } | null;
}
interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}
interface StreamsRow {
  readonly n: number;
  readonly tokenmill: Stat | null;
  readonly llamaCpp: Stat | null;
  readonly speedup: number | null;
  readonly errors: string[];
}
type PointJson = { decodeTokPerS: number[]; prefillTokPerS: number[]; weightBytes?: number };

function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 10) / 10;
  return { median: r(s[Math.floor(s.length / 2)]!), min: r(s[0]!), max: r(s[s.length - 1]!) };
}

function prepare(out: string, model: string, type: GgufQuantOption): { file: string; vocab: number; dir: string } {
  const cfg = SHAPES[model];
  if (!cfg) throw new Error(`unknown shape ${model} (${Object.keys(SHAPES).join(', ')})`);
  const dir = join(out, `quant-${model}`);
  if (!existsSync(join(dir, 'config.json'))) writeRandomModel(dir, cfg, { seed: 0, dtype: 'bf16', init: 'well-conditioned' });
  const file = join(out, `quant-${model}-${type}.gguf`);
  if (!existsSync(file)) {
    // Written aside and renamed, so that an interrupted conversion never leaves a short file behind
    // that the next run would take for the cached one.
    convertToGguf(dir, `${file}.part`, { type });
    renameSync(`${file}.part`, file);
  }
  return { file, vocab: cfg.vocab_size as number, dir };
}

function runJson<V = PointJson>(args: string[]): { ok: true; v: V } | { ok: false; error: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) return { ok: false, error: (r.stderr || r.error?.message || 'failed').trim().split('\n').slice(-3).join(' | ') };
  return { ok: true, v: JSON.parse(r.stdout.trim().split('\n').pop()!) };
}

/** Total output tok/s with n streams, both engines, `reps` times (bench/cpu/quant-streams.ts per rep). */
function measureStreams(file: string, threads: number, n: number, reps: number, gen: number): StreamsRow {
  const tm: number[] = [],
    lc: number[] = [],
    errors = new Set<string>();
  for (let r = 0; r < reps; r++) {
    const a = runJson<{ tokenmillTokPerS: number | null; llamaCppTokPerS: number | null; errors: string[] }>([
      'bench/cpu/quant-streams.ts',
      '--gguf',
      file,
      '--threads',
      String(threads),
      '--streams',
      String(n),
      '--prompt',
      '128',
      '--gen',
      String(gen),
      '--seed',
      String(1 + r),
    ]);
    if (!a.ok) {
      errors.add(a.error);
      continue;
    }
    if (a.v.tokenmillTokPerS !== null) tm.push(a.v.tokenmillTokPerS);
    if (a.v.llamaCppTokPerS !== null) lc.push(a.v.llamaCppTokPerS);
    for (const e of a.v.errors) errors.add(e);
  }
  const t = tm.length ? stat(tm) : null,
    l = lc.length ? stat(lc) : null;
  return { n, tokenmill: t, llamaCpp: l, speedup: t && l ? Math.round((t.median / l.median) * 100) / 100 : null, errors: [...errors] };
}

/** Measure every (model, type, threads), alternating the engines rep by rep. */
export function runQuantSection(o: {
  models: string[];
  types: GgufQuantOption[];
  threads: number[];
  reps: number;
  gen: number;
  bandwidthGbPerS: Record<number, number>;
  streams?: number;
}): QuantRow[] {
  const out = resolve('bench/out');
  mkdirSync(out, { recursive: true });
  const rows: QuantRow[] = [];
  for (const model of o.models) {
    for (const type of o.types) {
      const { file, vocab, dir } = prepare(out, model, type);
      for (const threads of o.threads) {
        const ours = { d: [] as number[], p: [] as number[], err: '' as string, bytes: null as number | null };
        const int8 = type === 'q8_0' ? { d: [] as number[], p: [] as number[], err: '' as string } : null;
        const peer = { d: [] as number[], p: [] as number[], err: '' as string };
        for (let r = 0; r < o.reps; r++) {
          const a = runJson([
            'bench/cpu/measure.ts',
            '--model',
            file,
            '--threads',
            String(threads),
            '--prompt',
            '128',
            '--gen',
            String(o.gen),
            '--reps',
            '1',
          ]);
          if (a.ok) {
            ours.d.push(...a.v.decodeTokPerS);
            ours.p.push(...a.v.prefillTokPerS);
            ours.bytes = a.v.weightBytes ?? null;
          } else ours.err = a.error;
          const b = runJson([
            'bench/cpu/quant-peer.ts',
            '--gguf',
            file,
            '--threads',
            String(threads),
            '--prompt',
            '128',
            '--gen',
            String(o.gen),
            '--reps',
            '1',
            '--vocab',
            String(vocab),
          ]);
          if (b.ok) {
            peer.d.push(...b.v.decodeTokPerS);
            peer.p.push(...b.v.prefillTokPerS);
          } else peer.err = b.error;
          if (int8 !== null) {
            const c = runJson([
              'bench/cpu/measure.ts',
              '--model',
              dir,
              '--quantize',
              'int8',
              '--threads',
              String(threads),
              '--prompt',
              '128',
              '--gen',
              String(o.gen),
              '--reps',
              '1',
            ]);
            if (c.ok) {
              int8.d.push(...c.v.decodeTokPerS);
              int8.p.push(...c.v.prefillTokPerS);
            } else int8.err = c.error;
          }
        }
        const streams = (o.streams ?? 0) > 0 ? measureStreams(file, threads, o.streams!, o.reps, o.gen) : null;
        type Res = { decode: Stat; prefill: Stat } | { error: string };
        const tm: Res = ours.d.length ? { decode: stat(ours.d), prefill: stat(ours.p) } : { error: ours.err };
        const lc: Res = peer.d.length ? { decode: stat(peer.d), prefill: stat(peer.p) } : { error: peer.err };
        const gbps = (x: Res): number | null =>
          'decode' in x && ours.bytes !== null ? Math.round((x.decode.median * ours.bytes) / 1e8) / 10 : null;
        const row: QuantRow = {
          model,
          type,
          threads,
          tokenmill: tm,
          llamaCpp: lc,
          weightBytesPerToken: ours.bytes,
          decodeGbPerS: { tokenmill: gbps(tm), llamaCpp: gbps(lc) },
          speedup: 'decode' in tm && 'decode' in lc ? Math.round((tm.decode.median / lc.decode.median) * 100) / 100 : null,
          streams,
          int8:
            int8 === null
              ? null
              : int8.d.length
                ? {
                    decode: stat(int8.d),
                    prefill: stat(int8.p),
                    prefillVsLlamaCpp: 'prefill' in lc ? Math.round((stat(int8.p).median / lc.prefill.median) * 100) / 100 : null,
                  }
                : { error: int8.err },
        };
        rows.push(row);
        const fmt = (x: Res): string =>
          'decode' in x ? `decode ${x.decode.median} [${x.decode.min}..${x.decode.max}] prefill ${x.prefill.median}` : `error: ${x.error}`;
        console.log(
          `quant ${model} ${type} threads=${threads}: tokenmill ${fmt(tm)} | llama.cpp ${fmt(lc)} | x${row.speedup ?? '?'}; ` +
            `GB/s ${row.decodeGbPerS.tokenmill ?? '?'} vs llama.cpp ${row.decodeGbPerS.llamaCpp ?? '?'} (streaming ` +
            `${o.bandwidthGbPerS[threads] ?? '?'})`,
        );
        if (row.int8 !== null) {
          const i = row.int8;
          console.log(
            `quant ${model} int8 (--quantize int8) threads=${threads}: ` +
              ('decode' in i
                ? `decode ${i.decode.median} prefill ${i.prefill.median} [${i.prefill.min}..${i.prefill.max}] | ` +
                  `prefill x${i.prefillVsLlamaCpp ?? '?'} llama.cpp Q8_0`
                : `error: ${i.error}`),
          );
        }
        if (streams !== null) {
          const errs = streams.errors.length ? ` (${streams.errors.join('; ')})` : '';
          console.log(
            `quant ${model} ${type} threads=${threads} ${streams.n} streams: tokenmill ${streams.tokenmill?.median ?? '?'} tok/s | ` +
              `llama.cpp ${streams.llamaCpp?.median ?? '?'} tok/s | x${streams.speedup ?? '?'}${errs}`,
          );
        }
      }
    }
  }
  return rows;
}

if (process.argv[1]?.endsWith('quant.ts')) {
  const rows = runQuantSection({
    models: arg('models', 'stories110M,llama-3.2-1B').split(','),
    types: arg('types', 'q8_0,q4_k_m').split(',') as GgufQuantOption[],
    threads: arg('threads', '1,2').split(',').map(Number),
    reps: Number(arg('reps', '5')),
    gen: Number(arg('gen', '64')),
    bandwidthGbPerS: {},
    streams: Number(arg('streams', '32')),
  });
  console.log(JSON.stringify({ bench: 'cpu-quant', date: new Date().toISOString(), rows }));
}
