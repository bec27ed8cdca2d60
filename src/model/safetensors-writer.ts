// Streaming safetensors writer for converters and model generators. The header is written from
// shapes alone; each tensor's bytes are produced (or chunk-streamed) only when its turn comes, so a
// 7B checkpoint is never held in memory. Writes to a temp file and renames it into place.
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { f32ToHalf } from '../runtime/dtype.js';
import { TokenmillError } from '../util/errors.js';
import { invariant } from '../util/invariant.js';
import { ST_DTYPE_BYTES, type StDType } from './safetensors-format.js';

/** Bytes of one tensor: the whole thing, or chunks whose lengths add up to numel x dtype size. */
export type TensorBytes = ArrayBufferView | Iterable<ArrayBufferView>;

export interface TensorToWrite {
  readonly name: string;
  readonly dtype: StDType;
  readonly shape: readonly number[];
  /**
   * The data in the stored encoding (Float32Array for F32, Uint16Array raw bits for F16/BF16,
   * Int32Array for I32, ...), or a producer called once, in file order, when the tensor is written.
   */
  readonly data: TensorBytes | (() => TensorBytes);
}

/** Encode f32 values for a float safetensors dtype (F16/BF16 round to nearest even). */
export function encodeFloats(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Float32Array | Uint16Array {
  if (dtype === 'F32') return values;
  return f32ToHalf(values, dtype === 'F16' ? 'f16' : 'bf16');
}

function byteSizeOf(t: TensorToWrite): number {
  let n = ST_DTYPE_BYTES[t.dtype];
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new TokenmillError('invalid_argument', `writeSafetensors: tensor '${t.name}' has bad shape [${t.shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** Build the padded header bytes (length prefix included) for these tensors. */
export function buildHeader(
  tensors: readonly TensorToWrite[],
  metadata: Readonly<Record<string, string>> = {},
): { header: Uint8Array; sizes: number[] } {
  const obj: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) obj.__metadata__ = metadata;
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(obj, t.name)) {
      throw new TokenmillError('invalid_argument', `writeSafetensors: duplicate or reserved tensor name '${t.name}'`);
    }
    const size = byteSizeOf(t);
    obj[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + size] };
    sizes.push(size);
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil(json.length / 8) * 8; // pad with spaces so the data section is 8-aligned
  const header = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, sizes };
}

function asBytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Write a safetensors file. Tensors land in the order given, back to back after the header.
 * Throws invalid_argument when produced bytes disagree with a tensor's shape, io_error on I/O.
 */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata: Readonly<Record<string, string>> = {}): void {
  invariant(endianness() === 'LE', 'safetensors writer assumes a little-endian host');
  const { header, sizes } = buildHeader(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new TokenmillError('io_error', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  let ok = false;
  try {
    writeAll(fd, header);
    tensors.forEach((t, i) => {
      const produced = typeof t.data === 'function' ? t.data() : t.data;
      const chunks: Iterable<ArrayBufferView> = ArrayBuffer.isView(produced) ? [produced] : produced;
      let written = 0;
      for (const c of chunks) {
        const b = asBytes(c);
        written += b.length;
        if (written > sizes[i]!) break;
        writeAll(fd, b);
      }
      if (written !== sizes[i]) {
        throw new TokenmillError(
          'invalid_argument',
          `writeSafetensors: tensor '${t.name}' [${t.shape.join(', ')}] ${t.dtype} needs ${sizes[i]} bytes, got ${written}`,
        );
      }
    });
    ok = true;
  } catch (e) {
    if (e instanceof TokenmillError) throw e;
    throw new TokenmillError('io_error', `writing ${path} failed: ${(e as Error).message}`, { cause: e });
  } finally {
    closeSync(fd);
    if (ok) renameSync(tmp, path);
    else rmSync(tmp, { force: true });
  }
}
