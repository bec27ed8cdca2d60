// Validated safetensors reader (single file or sharded via model.safetensors.index.json). Tensors
// are read with fs.readSync into one reusable buffer: read() takes a whole tensor, readPieces()
// walks it in bounded element-aligned pieces, so a loader holds at most READ_PIECE_BYTES of the
// file at once, whatever the tensor size. Never trusts a length before checking it.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';
import { TokenmillError, fileError } from '../util/errors.js';
import { MAX_HEADER_BYTES, parseHeader, parseHeaderLength, ST_DTYPE_BYTES, type StDType, type StTensorInfo } from './safetensors-format.js';

export { writeSafetensors, encodeFloats, type TensorToWrite, type TensorBytes } from './safetensors-writer.js';
export { MAX_HEADER_BYTES, ST_DTYPE_BYTES, type StDType, type StTensorInfo } from './safetensors-format.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Host data of one tensor in its stored encoding; F16/BF16 are raw bits. */
export type HostTensorData = Float32Array | Uint16Array | Int32Array | Uint8Array;

export interface HostTensor {
  readonly name: string;
  readonly dtype: StDType;
  readonly shape: readonly number[];
  readonly data: HostTensorData;
}

const READ_CHUNK_BYTES = 1 << 30; // readSync takes at most 2 GiB per call
/** Largest piece readPieces() reads at once (and the size of its reusable buffer). */
export const READ_PIECE_BYTES = 4 << 20;

function typedView(dtype: StDType, bytes: Uint8Array): HostTensorData {
  const { buffer, byteOffset, byteLength } = bytes;
  if (dtype === 'F32') return new Float32Array(buffer, byteOffset, byteLength / 4);
  if (dtype === 'F16' || dtype === 'BF16') return new Uint16Array(buffer, byteOffset, byteLength / 2);
  if (dtype === 'I32') return new Int32Array(buffer, byteOffset, byteLength / 4);
  return bytes;
}

/** One open safetensors file with a validated header. */
export class SafetensorsFile {
  readonly path: string;
  readonly tensors: ReadonlyMap<string, StTensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly fileSizeBytes: number;
  private fd: number | null;

  private constructor(
    path: string,
    fd: number,
    fileSizeBytes: number,
    tensors: ReadonlyMap<string, StTensorInfo>,
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.fd = fd;
    this.fileSizeBytes = fileSizeBytes;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  static open(path: string, opts: { maxHeaderBytes?: number } = {}): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw fileError(e, `cannot open ${path}`, path);
    }
    try {
      const size = fstatSync(fd).size;
      const prefix = new Uint8Array(8);
      readFully(fd, prefix, 0, path);
      const headerLen = parseHeaderLength(prefix, size, path, opts.maxHeaderBytes ?? MAX_HEADER_BYTES);
      const json = new Uint8Array(headerLen);
      readFully(fd, json, 8, path);
      const header = parseHeader(json, size, path);
      return new SafetensorsFile(path, fd, size, header.tensors, { ...header.metadata });
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Read a tensor's bytes into `into` (which must be large enough); returns the filled prefix. */
  readBytes(name: string, into?: Uint8Array): Uint8Array {
    const info = this.tensors.get(name);
    if (info === undefined)
      throw new TokenmillError('tensor_missing', `${this.path}: no tensor '${name}'`, { details: { file: this.path, tensor: name } });
    if (this.fd === null) throw new TokenmillError('io_error', `${this.path}: file already closed`);
    const out = into === undefined ? new Uint8Array(info.byteLength) : into.subarray(0, info.byteLength);
    if (out.length < info.byteLength) throw new TokenmillError('internal_error', `read buffer too small for '${name}'`);
    readFully(this.fd, out, info.fileOffset, this.path);
    return out;
  }

  /** Read bytes [byteStart, byteStart + into.length) of a tensor's data into `into`. */
  readRange(name: string, byteStart: number, into: Uint8Array): void {
    const info = this.tensors.get(name);
    if (info === undefined)
      throw new TokenmillError('tensor_missing', `${this.path}: no tensor '${name}'`, { details: { file: this.path, tensor: name } });
    if (this.fd === null) throw new TokenmillError('io_error', `${this.path}: file already closed`);
    if (!Number.isInteger(byteStart) || byteStart < 0 || byteStart + into.length > info.byteLength) {
      throw new TokenmillError(
        'internal_error',
        `range [${byteStart}, ${byteStart + into.length}) outside '${name}' (${info.byteLength} bytes)`,
      );
    }
    readFully(this.fd, into, info.fileOffset + byteStart, this.path);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function readFully(fd: number, out: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < out.length) {
    const n = readSync(fd, out, done, Math.min(out.length - done, READ_CHUNK_BYTES), position + done);
    if (n === 0)
      throw new TokenmillError('safetensors_truncated', `${path}: unexpected end of file at byte ${position + done}`, {
        details: { file: path },
      });
    done += n;
  }
}

/**
 * All tensors of a checkpoint directory (one file or shards), read one at a time. Names are the
 * CausalLM ones: a base-model checkpoint (HF `*Model` layout, e.g. Qwen3-Embedding: `embed_tokens`,
 * `layers.N...`, `norm` without the `model.` prefix) is seen with the prefix added.
 */
export class Checkpoint {
  readonly dir: string;
  readonly files: readonly SafetensorsFile[];
  /** True when the stored names lacked the `model.` prefix (a base-model checkpoint). */
  readonly isBaseModelLayout: boolean;
  private readonly where = new Map<string, SafetensorsFile>();
  /** Name seen -> name stored, where they differ. */
  private readonly stored = new Map<string, string>();
  private buffer: Uint8Array | null = null;
  private pieceBuffer: Uint8Array | null = null;

  constructor(dir: string, files: readonly SafetensorsFile[]) {
    this.dir = dir;
    this.files = files;
    for (const f of files) {
      for (const name of f.tensors.keys()) {
        const prev = this.where.get(name);
        if (prev !== undefined) {
          throw new TokenmillError('safetensors_bad_header', `tensor '${name}' appears in both ${prev.path} and ${f.path}`, {
            details: { tensor: name },
          });
        }
        this.where.set(name, f);
      }
    }
    this.isBaseModelLayout = !this.where.has('model.embed_tokens.weight') && this.where.has('embed_tokens.weight');
    if (this.isBaseModelLayout) {
      for (const [name, f] of [...this.where]) {
        if (name.startsWith('model.') || name.startsWith('lm_head.')) continue;
        this.where.delete(name);
        this.where.set(`model.${name}`, f);
        this.stored.set(`model.${name}`, name);
      }
    }
  }

  /** The name a stored tensor name is seen under. */
  canonicalName(storedName: string): string {
    return this.isBaseModelLayout && !storedName.startsWith('model.') && !storedName.startsWith('lm_head.')
      ? `model.${storedName}`
      : storedName;
  }

  tensorNames(): string[] {
    return [...this.where.keys()];
  }

  info(name: string): StTensorInfo | undefined {
    return this.where.get(name)?.tensors.get(this.stored.get(name) ?? name);
  }

  /** Which file holds a tensor (for error messages). */
  fileOf(name: string): string | undefined {
    return this.where.get(name)?.path;
  }

  /**
   * Read one tensor into the shared buffer. The returned data is valid until the next read():
   * copy or upload it before reading another tensor.
   */
  read(name: string): HostTensor {
    const file = this.where.get(name);
    const info = this.info(name);
    if (file === undefined || info === undefined) {
      throw new TokenmillError('tensor_missing', `${this.dir}: checkpoint has no tensor '${name}'`, {
        details: { dir: this.dir, tensor: name },
      });
    }
    if (this.buffer === null || this.buffer.length < info.byteLength)
      this.buffer = new Uint8Array(new ArrayBuffer(Math.max(8, maxTensorBytes(this.files))));
    const bytes = file.readBytes(info.name, this.buffer);
    return { name, dtype: info.dtype, shape: info.shape, data: typedView(info.dtype, bytes) };
  }

  /**
   * Visit a tensor's data in order, in pieces of at most maxPieceBytes cut on element boundaries:
   * fn(data, elemOffset) gets a typed view (stored encoding) valid only during the call. One
   * reusable buffer of maxPieceBytes serves every call, so memory stays bounded for any tensor.
   */
  readPieces(name: string, fn: (data: HostTensorData, elemOffset: number) => void, maxPieceBytes = READ_PIECE_BYTES): void {
    const file = this.where.get(name);
    const info = this.info(name);
    if (file === undefined || info === undefined) {
      throw new TokenmillError('tensor_missing', `${this.dir}: checkpoint has no tensor '${name}'`, {
        details: { dir: this.dir, tensor: name },
      });
    }
    const esz = ST_DTYPE_BYTES[info.dtype];
    const pieceElems = Math.max(1, Math.floor(maxPieceBytes / esz));
    const pieceBytes = pieceElems * esz;
    const want = Math.max(8, Math.min(pieceBytes, info.byteLength));
    if (this.pieceBuffer === null || this.pieceBuffer.length < want) {
      this.pieceBuffer = new Uint8Array(new ArrayBuffer(Math.max(want, Math.min(pieceBytes, maxTensorBytes(this.files)))));
    }
    for (let start = 0; start < info.byteLength; start += pieceBytes) {
      const bytes = this.pieceBuffer.subarray(0, Math.min(pieceBytes, info.byteLength - start));
      file.readRange(info.name, start, bytes);
      fn(typedView(info.dtype, bytes), start / esz);
    }
  }

  /** Drop the shared read buffers (after loading) and close every file. */
  close(): void {
    this.buffer = null;
    this.pieceBuffer = null;
    for (const f of this.files) f.close();
  }
}

function maxTensorBytes(files: readonly SafetensorsFile[]): number {
  let max = 0;
  for (const f of files) for (const t of f.tensors.values()) max = Math.max(max, t.byteLength);
  return max;
}

/** Open model.safetensors, or the shards listed in model.safetensors.index.json, under dir. */
export function openCheckpoint(dir: string, opts: { maxHeaderBytes?: number } = {}): Checkpoint {
  const indexPath = join(dir, INDEX_FILE);
  const singlePath = join(dir, SINGLE_FILE);
  if (existsSync(indexPath)) {
    const weightMap = readIndex(indexPath);
    const files: SafetensorsFile[] = [];
    try {
      for (const s of new Set(weightMap.values())) files.push(SafetensorsFile.open(join(dir, s), opts));
      const ckpt = new Checkpoint(dir, files);
      for (const [tensor, shard] of weightMap) {
        if (ckpt.fileOf(ckpt.canonicalName(tensor)) !== join(dir, shard)) {
          throw new TokenmillError('tensor_missing', `${indexPath}: weight_map puts '${tensor}' in ${shard}, which does not hold it`, {
            details: { file: indexPath, tensor },
          });
        }
      }
      return ckpt;
    } catch (e) {
      for (const f of files) f.close();
      throw e;
    }
  }
  if (existsSync(singlePath)) return new Checkpoint(dir, [SafetensorsFile.open(singlePath, opts)]);
  throw new TokenmillError('file_not_found', `${dir}: neither ${SINGLE_FILE} nor ${INDEX_FILE} found`, { details: { dir } });
}

/** Parse the shard index: tensor name -> shard file name. */
function readIndex(path: string): Map<string, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new TokenmillError('safetensors_bad_header', `${path}: not valid JSON: ${(e as Error).message}`, {
      cause: e,
      details: { file: path },
    });
  }
  const map = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new TokenmillError('safetensors_bad_header', `${path}: missing object 'weight_map'`, { details: { file: path } });
  }
  const shards = new Map<string, string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    // Shard names must be plain file names in the same directory (no path traversal).
    if (typeof file !== 'string' || file.length === 0 || basename(file) !== file || file === '..' || file === '.') {
      throw new TokenmillError('safetensors_bad_header', `${path}: weight_map['${tensor}'] is not a file name in the model directory`, {
        details: { file: path, tensor },
      });
    }
    shards.set(tensor, file);
  }
  return shards;
}

/** Read a whole (small) safetensors file into memory, copying each tensor. For tests and tools. */
export function readSafetensorsFile(path: string): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const f = SafetensorsFile.open(path);
  try {
    const tensors = new Map<string, HostTensor>();
    for (const info of f.tensors.values()) {
      tensors.set(info.name, {
        name: info.name,
        dtype: info.dtype,
        shape: info.shape,
        data: typedView(info.dtype, f.readBytes(info.name)),
      });
    }
    return { tensors, metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}
