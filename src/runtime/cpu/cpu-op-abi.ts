// The CPU op ABI, written once: each op's code and payload layout in the command stream (tensor refs
// first, 4 ints each, then scalars, in this order; ':f32' scalars travel as their f32 bits). The
// recorder (cpu-tensor.ts, used by cpu-ops.ts) writes payloads from it, and native/cpu/op_abi.h is
// generated from it by `npm run gen:cpu-abi` (test/cpu/cpu-op-abi.test.ts fails when the checked-in
// header is stale). Adding an op: a row here (codes are the row order, so append), the generator,
// its recorder in cpu-ops.ts, its CpuEngine method (op_<snake_name>: declared and dispatched from the
// generated TM_CPU_OPS list) and the kernel.

export interface CpuOpLayout {
  readonly name: string;
  /** Tensor references (a null ref is buffer id -1). */
  readonly refs: readonly string[];
  /** Scalars after the refs: int32, or f32 bits when the name ends in ':f32'. */
  readonly scalars: readonly string[];
}

export const CPU_OP_ABI = [
  { name: 'embedding', refs: ['out', 'table', 'ids'], scalars: ['T', 'D', 'V'] },
  { name: 'rmsnorm', refs: ['out', 'x', 'weight'], scalars: ['R', 'D', 'eps:f32'] },
  { name: 'addRmsnorm', refs: ['out', 'residual', 'x', 'weight'], scalars: ['R', 'D', 'eps:f32'] },
  { name: 'matmul', refs: ['out', 'x', 'w', 'bias'], scalars: ['T', 'K', 'N'] },
  { name: 'rope', refs: ['q', 'k', 'positions', 'invFreq'], scalars: ['T', 'H', 'Hkv', 'Dh'] },
  { name: 'kvWrite', refs: ['cacheK', 'cacheV', 'k', 'v', 'slotMapping'], scalars: ['T', 'Hkv', 'Dh', 'numSlots'] },
  {
    name: 'attention',
    refs: ['out', 'q', 'cacheK', 'cacheV', 'queryStartLoc', 'seqLens', 'blockTables'],
    scalars: ['T', 'S', 'maxBlocksPerSeq', 'H', 'Hkv', 'Dh', 'blockSize', 'numBlocks', 'scale:f32', 'slidingWindow'],
  },
  { name: 'siluMul', refs: ['out', 'gateUp'], scalars: ['T', 'I'] },
  { name: 'gatherRows', refs: ['out', 'x', 'rows'], scalars: ['S', 'D', 'T'] },
  { name: 'argmax', refs: ['out', 'logits'], scalars: ['S', 'V'] },
  {
    name: 'ropeKvWriteQkv',
    refs: ['qOut', 'qkv', 'cacheK', 'cacheV', 'positions', 'invFreq', 'slotMapping'],
    scalars: ['T', 'H', 'Hkv', 'Dh', 'numSlots'],
  },
  { name: 'matmulQ8', refs: ['out', 'x', 'wq', 'scales', 'bias'], scalars: ['T', 'K', 'N'] },
  { name: 'matmulGgml', refs: ['out', 'x', 'w', 'bias'], scalars: ['T', 'K', 'N', 'rowBytes', 'type'] },
  { name: 'embeddingGgml', refs: ['out', 'w', 'ids'], scalars: ['T', 'K', 'V', 'rowBytes', 'type'] },
] as const satisfies readonly CpuOpLayout[];

export type CpuOpName = (typeof CPU_OP_ABI)[number]['name'];

/** Ints per tensor reference: buffer id, dtype code, byte offset lo, hi. */
export const REF_INTS = 4;

/** Op name -> code (row index + 1; 0 is never an op). */
export const OP = Object.freeze(Object.fromEntries(CPU_OP_ABI.map((o, i) => [o.name, i + 1]))) as Readonly<Record<CpuOpName, number>>;

/** Payload ints of each op code (index 0 unused). */
export const OP_PAYLOAD_INTS: readonly number[] = [0, ...CPU_OP_ABI.map((o) => o.refs.length * REF_INTS + o.scalars.length)];

/** Per op code: which scalar positions are f32 (index 0 unused). */
export const OP_FLOAT_SCALARS: readonly (readonly boolean[])[] = [
  [],
  ...CPU_OP_ABI.map((o) => (o.scalars as readonly string[]).map((s) => s.endsWith(':f32'))),
];

export const OP_NAMES: readonly string[] = ['', ...CPU_OP_ABI.map((o) => o.name)];
