// Validated GGUF (v2/v3) reader: header, typed key/values, tensor infos and data bounds. Every
// count, length and offset is checked against the file before use; failures are gguf_invalid.
// Reads the header through a chunked cursor, never the whole file; tensor data is read on demand.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { GGML_TYPES } from '../../runtime/ggml-format.js';
import { TokenmillError } from '../../util/errors.js';

export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufValue[];

export { GGML_TYPES } from '../../runtime/ggml-format.js';

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: innermost (row length) first. */
  readonly dims: readonly number[];
  /** Row-major shape, outermost first (dims reversed), as safetensors/HF write it. */
  readonly shape: readonly number[];
  readonly type: number;
  readonly typeName: string;
  readonly numel: number;
  readonly sizeBytes: number;
  /** Absolute byte offset in the file. */
  readonly fileOffset: number;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
  readonly alignment: number;
  readonly dataOffset: number;
  readonly fileSizeBytes: number;
}

/** Random access to the file's bytes. */
export interface ByteSource {
  readonly sizeBytes: number;
  read(offset: number, length: number): Uint8Array;
}

export const MAX_TENSORS = 1 << 16;
export const MAX_KV = 1 << 20;
const MAX_STRING_BYTES = 1 << 30;
const MAX_ARRAY_DEPTH = 4;

export function memorySource(bytes: Uint8Array): ByteSource {
  return { sizeBytes: bytes.byteLength, read: (o, n) => bytes.subarray(o, o + n) };
}

function bad(file: string, why: string): TokenmillError {
  return new TokenmillError('gguf_invalid', `${file}: ${why}`, { details: { file } });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Sequential little-endian reads with bounds checks against the whole file. */
class Cursor {
  pos = 0;
  constructor(
    private readonly src: ByteSource,
    private readonly file: string,
  ) {}

  get remaining(): number {
    return this.src.sizeBytes - this.pos;
  }

  bytes(n: number, what: string): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining)
      throw bad(this.file, `${what} (${n} bytes at offset ${this.pos}) runs past the end of the file`);
    const out = this.src.read(this.pos, n);
    this.pos += n;
    return out;
  }

  private view(n: number, what: string): DataView {
    const b = this.bytes(n, what);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  u8(w: string) {
    return this.view(1, w).getUint8(0);
  }
  i8(w: string) {
    return this.view(1, w).getInt8(0);
  }
  u16(w: string) {
    return this.view(2, w).getUint16(0, true);
  }
  i16(w: string) {
    return this.view(2, w).getInt16(0, true);
  }
  u32(w: string) {
    return this.view(4, w).getUint32(0, true);
  }
  i32(w: string) {
    return this.view(4, w).getInt32(0, true);
  }
  f32(w: string) {
    return shortestF32(this.view(4, w).getFloat32(0, true));
  }
  f64(w: string) {
    return this.view(8, w).getFloat64(0, true);
  }
  i64(w: string): number | bigint {
    return small(this.view(8, w).getBigInt64(0, true));
  }
  u64(w: string): number | bigint {
    return small(this.view(8, w).getBigUint64(0, true));
  }

  /** A u64 that must be a safe integer <= max. */
  count(what: string, max: number): number {
    const v = this.view(8, what).getBigUint64(0, true);
    if (v > BigInt(max)) throw bad(this.file, `${what} ${v} is too large (max ${max})`);
    return Number(v);
  }

  string(what: string): string {
    const n = this.count(`${what} length`, Math.min(MAX_STRING_BYTES, this.remaining));
    try {
      return utf8.decode(this.bytes(n, what));
    } catch (e) {
      if (e instanceof TokenmillError) throw e;
      throw bad(this.file, `${what} is not valid UTF-8`);
    }
  }
}

/** The shortest decimal that rounds to the same f32 (1e-5, not 9.999999747378752e-6). */
function shortestF32(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

function small(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/** Smallest encoded size of one value of a type (bounds array counts before reading). */
const MIN_VALUE_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8 };

function readValue(c: Cursor, type: number, what: string, file: string, depth = 0): GgufValue {
  switch (type) {
    case 0:
      return c.u8(what);
    case 1:
      return c.i8(what);
    case 2:
      return c.u16(what);
    case 3:
      return c.i16(what);
    case 4:
      return c.u32(what);
    case 5:
      return c.i32(what);
    case 6:
      return c.f32(what);
    case 7: {
      const b = c.u8(what);
      if (b > 1) throw bad(file, `${what}: bool byte ${b} is neither 0 nor 1`);
      return b === 1;
    }
    case 8:
      return c.string(what);
    case 9: {
      if (depth >= MAX_ARRAY_DEPTH) throw bad(file, `${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
      const elemType = c.u32(`${what} element type`);
      const min = MIN_VALUE_BYTES[elemType];
      if (min === undefined) throw bad(file, `${what}: unknown array element type ${elemType}`);
      const n = c.count(`${what} array length`, Math.floor(c.remaining / min));
      const out = new Array<GgufValue>(n);
      for (let i = 0; i < n; i++) out[i] = readValue(c, elemType, what, file, depth + 1);
      return out;
    }
    case 10:
      return c.u64(what);
    case 11:
      return c.i64(what);
    case 12:
      return c.f64(what);
    default:
      throw bad(file, `${what}: unknown value type ${type}`);
  }
}

/** Parse and validate a GGUF header from any byte source. */
export function parseGguf(src: ByteSource, file = 'model.gguf'): GgufFile {
  const c = new Cursor(src, file);
  if (src.sizeBytes < 24) throw bad(file, 'too short to be a GGUF file');
  const magic = c.bytes(4, 'magic');
  if (String.fromCharCode(...magic) !== 'GGUF') throw bad(file, 'bad magic (not a GGUF file)');
  const version = c.u32('version');
  if (version === 0x02000000 || version === 0x03000000) throw bad(file, 'big-endian GGUF files are not supported');
  if (version !== 2 && version !== 3) throw bad(file, `GGUF version ${version} is not supported (2 or 3)`);
  // A tensor info takes at least 8+1+4+8+4+8 bytes, a key/value at least 8+1+4+1.
  const numTensors = c.count('tensor count', Math.min(MAX_TENSORS, Math.floor(src.sizeBytes / 33)));
  const numKv = c.count('key/value count', Math.min(MAX_KV, Math.floor(src.sizeBytes / 14)));
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < numKv; i++) {
    const key = c.string(`key ${i}`);
    if (metadata.has(key)) throw bad(file, `duplicate key '${key}'`);
    metadata.set(key, readValue(c, c.u32(`type of '${key}'`), `'${key}'`, file));
  }
  const align = metadata.get('general.alignment') ?? 32;
  if (typeof align !== 'number' || !Number.isInteger(align) || align <= 0 || (align & (align - 1)) !== 0) {
    throw bad(file, `general.alignment ${String(align)} is not a power of two`);
  }
  const infos: Omit<GgufTensorInfo, 'fileOffset'>[] = [];
  const rel: number[] = [];
  const names = new Set<string>();
  for (let i = 0; i < numTensors; i++) {
    const name = c.string(`tensor ${i} name`);
    if (names.has(name)) throw bad(file, `duplicate tensor '${name}'`);
    names.add(name);
    const nDims = c.u32(`'${name}' n_dims`);
    if (nDims < 1 || nDims > 4) throw bad(file, `tensor '${name}' has ${nDims} dims (1..4)`);
    const dims: number[] = [];
    let numel = 1;
    for (let d = 0; d < nDims; d++) {
      const n = c.count(`'${name}' dim ${d}`, Number.MAX_SAFE_INTEGER);
      if (n < 1) throw bad(file, `tensor '${name}' has an empty dimension`);
      dims.push(n);
      numel *= n;
      if (!Number.isSafeInteger(numel)) throw bad(file, `tensor '${name}' has too many elements`);
    }
    const type = c.u32(`'${name}' type`);
    const t = GGML_TYPES[type];
    if (!t) throw bad(file, `tensor '${name}' has unknown ggml type ${type}`);
    const [typeName, blockElems, blockBytes] = t;
    if (dims[0]! % blockElems !== 0)
      throw bad(file, `tensor '${name}' row length ${dims[0]} is not a multiple of the ${typeName} block (${blockElems})`);
    const offset = c.count(`'${name}' offset`, Number.MAX_SAFE_INTEGER);
    if (offset % align !== 0) throw bad(file, `tensor '${name}' offset ${offset} is not aligned to ${align}`);
    infos.push({ name, dims, shape: [...dims].reverse(), type, typeName, numel, sizeBytes: (numel / blockElems) * blockBytes });
    rel.push(offset);
  }
  const dataOffset = Math.ceil(c.pos / align) * align;
  const dataBytes = src.sizeBytes - dataOffset;
  const tensors = new Map<string, GgufTensorInfo>();
  infos.forEach((info, i) => {
    if (rel[i]! + info.sizeBytes > dataBytes) {
      throw bad(
        file,
        `tensor '${info.name}' data [${rel[i]}, ${rel[i]! + info.sizeBytes}) lies outside the data section (` +
          `${Math.max(0, dataBytes)} bytes)`,
      );
    }
    tensors.set(info.name, { ...info, fileOffset: dataOffset + rel[i]! });
  });
  const sorted = [...tensors.values()].sort((a, b) => a.fileOffset - b.fileOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (prev.fileOffset + prev.sizeBytes > sorted[i]!.fileOffset)
      throw bad(file, `tensors '${prev.name}' and '${sorted[i]!.name}' overlap`);
  }
  return { path: file, version, metadata, tensors, alignment: align, dataOffset, fileSizeBytes: src.sizeBytes };
}

/** A file-backed source reading 1 MiB chunks on demand (the caller closes it). */
export function fileSource(path: string): ByteSource & { close(): void } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new TokenmillError('file_not_found', `cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  const sizeBytes = fstatSync(fd).size;
  const CHUNK = 1 << 20;
  let chunkStart = -1;
  let chunk: Uint8Array = new Uint8Array(0);
  const readAt = (offset: number, length: number): Uint8Array => {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, Math.min(length - done, 1 << 30), offset + done);
      if (n <= 0) throw new TokenmillError('io_error', `${path}: short read at byte ${offset + done}`);
      done += n;
    }
    return out;
  };
  return {
    sizeBytes,
    read(offset, length) {
      if (length > CHUNK) return readAt(offset, length);
      if (offset < chunkStart || offset + length > chunkStart + chunk.byteLength) {
        chunkStart = offset;
        chunk = readAt(offset, Math.min(CHUNK, sizeBytes - offset));
      }
      return chunk.subarray(offset - chunkStart, offset - chunkStart + length);
    },
    close: () => closeSync(fd),
  };
}

/** Open and validate a GGUF file's header (tensor data is not read). */
export function readGgufFile(path: string): GgufFile {
  const src = fileSource(path);
  try {
    return parseGguf(src, path);
  } finally {
    src.close();
  }
}
