// GGUF v3 writer: typed key/values, tensor infos (ggml dim order), alignment padding, then tensor data
// streamed one tensor at a time from producers (never the whole model in memory). Little-endian.
// Knows the container format only; what the keys and tensors mean is to-gguf.ts's business.
import { closeSync, openSync, writeSync } from 'node:fs';
import { TokenmillError } from '../../util/errors.js';
import { invariant, InvariantError } from '../../util/invariant.js';
import { GGML_BLOCK, ggmlRowBytes, type GgmlQuantType } from '../../runtime/ggml-format.js';

export type GgufKvValue =
  | { readonly type: 'u32' | 'i32' | 'f32' | 'u64'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'str'; readonly value: string }
  | { readonly type: 'arr_str'; readonly value: readonly string[] }
  | { readonly type: 'arr_f32' | 'arr_i32'; readonly value: ArrayLike<number> };

export type GgufKv = GgufKvValue & { readonly key: string };

export type GgufFloatType = 'F32' | 'F16' | 'BF16';
export type GgufTensorType = GgufFloatType | GgmlQuantType;
const FLOAT_ID: Record<GgufFloatType, number> = { F32: 0, F16: 1, BF16: 30 };
const FLOAT_BYTES: Record<GgufFloatType, number> = { F32: 4, F16: 2, BF16: 2 };
const isFloat = (t: GgufTensorType): t is GgufFloatType => t === 'F32' || t === 'F16' || t === 'BF16';
const typeId = (t: GgufTensorType): number => (isFloat(t) ? FLOAT_ID[t] : GGML_BLOCK[t].id);

/** Bytes of a tensor of this type and row-major shape (rows of shape[-1] elements). */
export function ggufTensorBytes(type: GgufTensorType, shape: readonly number[]): number {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (isFloat(type)) return numel * FLOAT_BYTES[type];
  const K = shape[shape.length - 1]!;
  return (numel / K) * ggmlRowBytes(type, K);
}

export interface GgufTensorToWrite {
  readonly name: string;
  /** Row-major shape, outermost first (as safetensors); written reversed (ggml order). */
  readonly shape: readonly number[];
  readonly type: GgufTensorType;
  /** Called once, in file order: F32 as Float32Array, F16/BF16 as raw Uint16Array bits, quantized types as block bytes. */
  readonly data: () => Float32Array | Uint16Array | Uint8Array;
}

// GGUF value type ids.
const T = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9, u64: 10 } as const;

/** Appends little-endian fields to a growable list of byte chunks. */
class ByteSink {
  private readonly parts: Uint8Array[] = [];
  private cur = new DataView(new ArrayBuffer(1 << 16));
  private pos = 0;
  size = 0;

  private room(n: number): void {
    if (this.pos + n <= this.cur.byteLength) return;
    this.flushChunk();
    if (n > this.cur.byteLength) this.cur = new DataView(new ArrayBuffer(n));
  }

  private flushChunk(): void {
    if (this.pos > 0) this.parts.push(new Uint8Array(this.cur.buffer.slice(0, this.pos)));
    this.cur = new DataView(new ArrayBuffer(1 << 16));
    this.pos = 0;
  }

  /** Writes one little-endian scalar of `n` bytes at the cursor. */
  private put(n: number, write: (view: DataView, pos: number) => void): void {
    this.room(n);
    write(this.cur, this.pos);
    this.pos += n;
    this.size += n;
  }
  u8(v: number): void {
    this.put(1, (d, p) => d.setUint8(p, v));
  }
  u32(v: number): void {
    this.put(4, (d, p) => d.setUint32(p, v, true));
  }
  i32(v: number): void {
    this.put(4, (d, p) => d.setInt32(p, v, true));
  }
  f32(v: number): void {
    this.put(4, (d, p) => d.setFloat32(p, v, true));
  }
  u64(v: number): void {
    invariant(Number.isSafeInteger(v) && v >= 0, 'gguf u64 field must be a non-negative safe integer');
    this.room(8);
    this.cur.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
    this.size += 8;
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.byteLength);
    this.room(b.byteLength);
    new Uint8Array(this.cur.buffer, this.pos, b.byteLength).set(b);
    this.pos += b.byteLength;
    this.size += b.byteLength;
  }

  bytes(): Uint8Array {
    this.flushChunk();
    return Buffer.concat(this.parts);
  }
}

function writeKv(w: ByteSink, kv: GgufKv): void {
  w.str(kv.key);
  switch (kv.type) {
    case 'u32':
      w.u32(T.u32);
      w.u32(kv.value);
      break;
    case 'i32':
      w.u32(T.i32);
      w.i32(kv.value);
      break;
    case 'f32':
      w.u32(T.f32);
      w.f32(kv.value);
      break;
    case 'u64':
      w.u32(T.u64);
      w.u64(kv.value);
      break;
    case 'bool':
      w.u32(T.bool);
      w.u8(kv.value ? 1 : 0);
      break;
    case 'str':
      w.u32(T.str);
      w.str(kv.value);
      break;
    case 'arr_str':
      w.u32(T.arr);
      w.u32(T.str);
      w.u64(kv.value.length);
      for (const s of kv.value) w.str(s);
      break;
    case 'arr_f32':
      w.u32(T.arr);
      w.u32(T.f32);
      w.u64(kv.value.length);
      for (let i = 0; i < kv.value.length; i++) w.f32(kv.value[i]!);
      break;
    case 'arr_i32':
      w.u32(T.arr);
      w.u32(T.i32);
      w.u64(kv.value.length);
      for (let i = 0; i < kv.value.length; i++) w.i32(kv.value[i]!);
      break;
  }
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Write a GGUF v3 file: header, key/values, tensor infos, padding, then each tensor's data (aligned). */
export function writeGguf(path: string, kvs: readonly GgufKv[], tensors: readonly GgufTensorToWrite[], alignment = 32): void {
  const w = new ByteSink();
  for (const c of 'GGUF') w.u8(c.charCodeAt(0));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kvs.length + (alignment !== 32 ? 1 : 0));
  for (const kv of kvs) writeKv(w, kv);
  if (alignment !== 32) writeKv(w, { key: 'general.alignment', type: 'u32', value: alignment });
  const sizes = tensors.map((t) => ggufTensorBytes(t.type, t.shape));
  let offset = 0;
  tensors.forEach((t, i) => {
    w.str(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(d);
    w.u32(typeId(t.type));
    w.u64(offset);
    offset = alignUp(offset + sizes[i]!, alignment);
  });
  const header = w.bytes();
  const dataStart = alignUp(header.byteLength, alignment);
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (e) {
    throw new TokenmillError('io_error', `cannot create ${path}: ${(e as Error).message}`, { cause: e, details: { file: path } });
  }
  try {
    writeSync(fd, header, 0, header.byteLength, 0);
    let pos = dataStart;
    let end = header.byteLength;
    tensors.forEach((t, i) => {
      const data = t.data();
      const expected = t.type === 'F32' ? Float32Array : isFloat(t.type) ? Uint16Array : Uint8Array;
      invariant(
        data instanceof expected && data.byteLength === sizes[i],
        `gguf tensor ${t.name}: data does not match ${t.type} [${t.shape.join(', ')}]`,
      );
      writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0, data.byteLength, pos);
      end = pos + data.byteLength;
      pos = alignUp(end, alignment);
    });
    // Pad the file to the end of the last tensor's aligned slot (as gguf-py does).
    if (pos > end) writeSync(fd, new Uint8Array(pos - end), 0, pos - end, end);
  } catch (e) {
    if (e instanceof TokenmillError || e instanceof InvariantError) throw e;
    throw new TokenmillError('io_error', `writing ${path}: ${(e as Error).message}`, { cause: e, details: { file: path } });
  } finally {
    closeSync(fd);
  }
}
