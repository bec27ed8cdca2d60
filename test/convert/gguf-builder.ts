// Test helper: writes GGUF v3 bytes from typed key/values and tensors, with hooks to corrupt them.
export type KvType = 'u8' | 'i32' | 'u32' | 'f32' | 'bool' | 'str' | 'u64' | 'arr_str' | 'arr_f32' | 'arr_i32';
export interface Kv {
  key: string;
  type: KvType;
  value: unknown;
}
export interface TensorSpec {
  name: string;
  dims: number[];
  type: number;
  data: Uint8Array;
  offset?: number;
}

const TYPE_ID: Record<KvType, number> = { u8: 0, i32: 5, u32: 4, f32: 6, bool: 7, str: 8, u64: 10, arr_str: 9, arr_f32: 9, arr_i32: 9 };

class W {
  private parts: Uint8Array[] = [];
  size = 0;
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.byteLength;
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  i32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  f32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.byteLength);
    this.push(b);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.byteLength;
    }
    return out;
  }
}

function writeValue(w: W, type: KvType, v: unknown): void {
  switch (type) {
    case 'u8':
      w.push(Uint8Array.of(v as number));
      break;
    case 'bool':
      w.push(Uint8Array.of(v ? 1 : 0));
      break;
    case 'i32':
      w.i32(v as number);
      break;
    case 'u32':
      w.u32(v as number);
      break;
    case 'f32':
      w.f32(v as number);
      break;
    case 'u64':
      w.u64(v as number);
      break;
    case 'str':
      w.str(v as string);
      break;
    case 'arr_str': {
      const a = v as string[];
      w.u32(8);
      w.u64(a.length);
      for (const s of a) w.str(s);
      break;
    }
    case 'arr_f32': {
      const a = v as number[];
      w.u32(6);
      w.u64(a.length);
      for (const x of a) w.f32(x);
      break;
    }
    case 'arr_i32': {
      const a = v as number[];
      w.u32(5);
      w.u64(a.length);
      for (const x of a) w.i32(x);
      break;
    }
  }
}

export interface BuildOptions {
  version?: number;
  magic?: string;
  alignment?: number;
  tensorCount?: number | bigint;
  kvCount?: number | bigint;
}

/** GGUF bytes: header, kvs, tensor infos, padding to alignment, then tensor data at their offsets. */
export function buildGguf(kvs: Kv[], tensors: TensorSpec[], opts: BuildOptions = {}): Uint8Array {
  const align = opts.alignment ?? 32;
  const w = new W();
  w.push(new TextEncoder().encode(opts.magic ?? 'GGUF'));
  w.u32(opts.version ?? 3);
  w.u64(opts.tensorCount ?? tensors.length);
  w.u64(opts.kvCount ?? kvs.length);
  for (const kv of kvs) {
    w.str(kv.key);
    w.u32(TYPE_ID[kv.type]);
    writeValue(w, kv.type, kv.value);
  }
  let off = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const o = t.offset ?? off;
    offsets.push(o);
    off = Math.ceil((o + t.data.byteLength) / align) * align;
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(o);
  }
  const header = w.bytes();
  const dataStart = Math.ceil(header.byteLength / align) * align;
  const end = Math.max(dataStart, ...tensors.map((t, i) => dataStart + offsets[i]! + t.data.byteLength));
  const out = new Uint8Array(end);
  out.set(header);
  tensors.forEach((t, i) => {
    if (dataStart + offsets[i]! + t.data.byteLength <= end) out.set(t.data, dataStart + offsets[i]!);
  });
  return out;
}

export const f32Bytes = (a: number[]): Uint8Array => new Uint8Array(Float32Array.from(a).buffer);
