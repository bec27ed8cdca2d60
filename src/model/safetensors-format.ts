// The safetensors on-disk format: dtype names, sizes and the header validator shared by the reader
// and the writer. Validates before it trusts: every length and offset is checked against the file
// size and the dtype allowlist, and each error names the file and the tensor.
import { TokenmillError } from '../util/errors.js';

/** safetensors dtypes we accept: floats for weights, integers for metadata tensors. */
export type StDType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const ST_DTYPE_BYTES: Readonly<Record<StDType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Default cap on the JSON header length (a real 405B index header is a few MiB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface StTensorInfo {
  readonly name: string;
  readonly dtype: StDType;
  readonly shape: readonly number[];
  readonly numel: number;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

export interface StHeader {
  /** Bytes before the data section: 8 + header length. */
  readonly dataStart: number;
  readonly tensors: ReadonlyMap<string, StTensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
}

function isStDType(s: unknown): s is StDType {
  return typeof s === 'string' && Object.hasOwn(ST_DTYPE_BYTES, s);
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Read the 8-byte little-endian header length, rejecting anything over the cap or the file. */
export function parseHeaderLength(prefix: Uint8Array, fileSizeBytes: number, file: string, maxHeaderBytes = MAX_HEADER_BYTES): number {
  if (fileSizeBytes < 8 || prefix.length < 8) {
    throw new TokenmillError('safetensors_truncated', `${file}: file is ${fileSizeBytes} bytes, shorter than the 8-byte header length`, {
      details: { file },
    });
  }
  const len = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (len > BigInt(maxHeaderBytes)) {
    throw new TokenmillError('safetensors_header_too_large', `${file}: header length ${len} exceeds the cap of ${maxHeaderBytes} bytes`, {
      details: { file, headerBytes: len.toString() },
    });
  }
  const n = Number(len);
  if (8 + n > fileSizeBytes) {
    throw new TokenmillError(
      'safetensors_truncated',
      `${file}: header says ${n} bytes but the file has only ${fileSizeBytes - 8} after the length`,
      { details: { file } },
    );
  }
  return n;
}

function badHeader(file: string, msg: string, tensor?: string): TokenmillError {
  const where = tensor === undefined ? '' : ` (tensor '${tensor}')`;
  return new TokenmillError('safetensors_bad_header', `${file}: ${msg}${where}`, { details: { file, tensor } });
}

/**
 * Parse and validate the JSON header. fileSizeBytes bounds the data section; tensors must have
 * allowed dtypes, ordered in-bounds offsets, sizes equal to numel x dtype size and no overlaps.
 */
export function parseHeader(json: Uint8Array, fileSizeBytes: number, file: string): StHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new TokenmillError('safetensors_bad_header', `${file}: header is not valid UTF-8 JSON: ${(e as Error).message}`, {
      details: { file },
      cause: e,
    });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badHeader(file, 'header is not a JSON object');
  const dataStart = 8 + json.length;
  const dataSize = fileSizeBytes - dataStart;
  const tensors = new Map<string, StTensorInfo>();
  let metadata: Record<string, string> = {};
  const ranges: { name: string; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, file);
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badHeader(file, 'entry is not an object', name);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string') throw badHeader(file, 'missing dtype', name);
    if (!isStDType(dtype)) {
      throw new TokenmillError(
        'safetensors_bad_dtype',
        `${file}: tensor '${name}' has dtype ${dtype}; allowed: ${Object.keys(ST_DTYPE_BYTES).join(', ')}`,
        { details: { file, tensor: name, dtype } },
      );
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) throw badHeader(file, 'shape is not an array of non-negative integers', name);
    if (!Array.isArray(offsets) || offsets.length !== 2) throw badHeader(file, 'data_offsets is not a [begin, end] pair', name);
    const [begin, end] = offsets as unknown[];
    if (!isCount(begin) || !isCount(end) || begin > end) {
      throw new TokenmillError(
        'safetensors_bad_offsets',
        `${file}: tensor '${name}' has data_offsets [${String(begin)}, ${String(end)}]; need integers 0 <= begin <= end`,
        { details: { file, tensor: name } },
      );
    }
    if (end > dataSize) {
      throw new TokenmillError(
        'safetensors_truncated',
        `${file}: tensor '${name}' ends at data byte ${end} but the data section holds only ${dataSize} bytes (incomplete file?)`,
        { details: { file, tensor: name } },
      );
    }
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const expected = numel * ST_DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      throw new TokenmillError(
        'safetensors_size_mismatch',
        `${file}: tensor '${name}' [${(shape as number[]).join(', ')}] ${dtype} needs ${expected} bytes but data_offsets span ` +
          `${end - begin}`,
        { details: { file, tensor: name } },
      );
    }
    tensors.set(name, { name, dtype, shape: shape as number[], numel, fileOffset: dataStart + begin, byteLength: end - begin });
    ranges.push({ name, begin, end });
  }
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let reach: { name: string; begin: number; end: number } | null = null; // the range reaching furthest so far
  for (const cur of ranges) {
    if (cur.end === cur.begin) continue; // zero-length tensors occupy no bytes
    if (reach !== null && cur.begin < reach.end) {
      throw new TokenmillError(
        'safetensors_overlap',
        `${file}: tensor '${cur.name}' [${cur.begin}, ${cur.end}) overlaps '${reach.name}' [${reach.begin}, ${reach.end})`,
        { details: { file, tensor: cur.name, other: reach.name } },
      );
    }
    if (reach === null || cur.end > reach.end) reach = cur;
  }
  return { dataStart, tensors, metadata };
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badHeader(file, '__metadata__ is not an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw badHeader(file, `__metadata__.${k} is not a string`);
    out[k] = v;
  }
  return out;
}
