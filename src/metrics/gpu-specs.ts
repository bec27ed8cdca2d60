// Accelerator table for the capacity planner (and later bench reports): memory, peak memory
// bandwidth, dense peak FLOP/s and a typical rental price. Memory, bandwidth and TFLOP/s are vendor
// datasheet figures (dense, i.e. WITHOUT the 2:4 sparsity doubling datasheets headline); prices are
// rough on-demand market figures (late 2024 - 2025), never a quote: pass --usd-per-hour for yours.

export interface AcceleratorSpec {
  readonly key: string;
  readonly name: string;
  /** Device memory in GB (10^9 bytes), as the datasheet states it. */
  readonly memoryGb: number;
  /** Peak memory bandwidth, GB/s (10^9 bytes per second). */
  readonly bandwidthGbPerS: number;
  /** Dense BF16 tensor-core peak (FP32 accumulate), TFLOP/s. Also used for f16 and int8-weight (W8A16). */
  readonly bf16Tflops: number;
  /** Dense FP32 (non-tensor) peak, TFLOP/s: the compute roof for f32 weights. */
  readonly fp32Tflops: number;
  /** Typical on-demand USD per hour for one device (approximate market figure, not datasheet). */
  readonly usdPerHour: number;
  /** Where the figures come from. */
  readonly source: string;
}

export const ACCELERATORS: Readonly<Record<string, AcceleratorSpec>> = {
  // NVIDIA H100 Tensor Core GPU datasheet (SXM5): 80 GB HBM3, 3.35 TB/s, BF16 1,979 TFLOPS with
  // sparsity -> 989 dense, FP32 67 TFLOPS. Datasheet figures.
  h100: {
    key: 'h100',
    name: 'NVIDIA H100 SXM5 80GB',
    memoryGb: 80,
    bandwidthGbPerS: 3350,
    bf16Tflops: 989,
    fp32Tflops: 67,
    usdPerHour: 2.99,
    source: 'NVIDIA H100 datasheet (SXM5), datasheet figures',
  },
  // NVIDIA H200 Tensor Core GPU datasheet (SXM): 141 GB HBM3e, 4.8 TB/s, BF16 1,979 TFLOPS sparse
  // -> 989 dense, FP32 67 TFLOPS. Datasheet figures.
  h200: {
    key: 'h200',
    name: 'NVIDIA H200 SXM 141GB',
    memoryGb: 141,
    bandwidthGbPerS: 4800,
    bf16Tflops: 989,
    fp32Tflops: 67,
    usdPerHour: 3.79,
    source: 'NVIDIA H200 datasheet (SXM), datasheet figures',
  },
  // NVIDIA A100 Tensor Core GPU datasheet (80GB SXM): 80 GB HBM2e, 2,039 GB/s, BF16 312 TFLOPS
  // dense (624 sparse), FP32 19.5 TFLOPS. Datasheet figures.
  a100: {
    key: 'a100',
    name: 'NVIDIA A100 SXM 80GB',
    memoryGb: 80,
    bandwidthGbPerS: 2039,
    bf16Tflops: 312,
    fp32Tflops: 19.5,
    usdPerHour: 1.79,
    source: 'NVIDIA A100 datasheet (80GB SXM), datasheet figures',
  },
  // Same datasheet, 40GB SXM column: 40 GB HBM2, 1,555 GB/s, BF16 312 dense, FP32 19.5. Datasheet figures.
  'a100-40g': {
    key: 'a100-40g',
    name: 'NVIDIA A100 SXM 40GB',
    memoryGb: 40,
    bandwidthGbPerS: 1555,
    bf16Tflops: 312,
    fp32Tflops: 19.5,
    usdPerHour: 1.29,
    source: 'NVIDIA A100 datasheet (40GB SXM), datasheet figures',
  },
  // NVIDIA L40S datasheet: 48 GB GDDR6, 864 GB/s, BF16 733 TFLOPS with sparsity -> 362 dense,
  // FP32 91.6 TFLOPS. Datasheet figures.
  l40s: {
    key: 'l40s',
    name: 'NVIDIA L40S 48GB',
    memoryGb: 48,
    bandwidthGbPerS: 864,
    bf16Tflops: 362,
    fp32Tflops: 91.6,
    usdPerHour: 1.0,
    source: 'NVIDIA L40S datasheet, datasheet figures',
  },
  // NVIDIA L4 datasheet: 24 GB GDDR6, 300 GB/s, BF16 242 TFLOPS with sparsity -> 121 dense, FP32
  // 30.3 TFLOPS. Datasheet figures.
  l4: {
    key: 'l4',
    name: 'NVIDIA L4 24GB',
    memoryGb: 24,
    bandwidthGbPerS: 300,
    bf16Tflops: 121,
    fp32Tflops: 30.3,
    usdPerHour: 0.7,
    source: 'NVIDIA L4 datasheet, datasheet figures',
  },
  // AWS's A10G has no public NVIDIA datasheet; these are the NVIDIA A10 datasheet figures (24 GB
  // GDDR6, 600 GB/s, BF16 250 sparse -> 125 dense, FP32 31.2), which the A10G matches in memory
  // and bandwidth; its tensor throughput is reported lower, so treat the compute roof as optimistic.
  a10g: {
    key: 'a10g',
    name: 'NVIDIA A10G 24GB',
    memoryGb: 24,
    bandwidthGbPerS: 600,
    bf16Tflops: 125,
    fp32Tflops: 31.2,
    usdPerHour: 1.01,
    source: 'NVIDIA A10 datasheet (A10G is the AWS variant), datasheet figures',
  },
  // NVIDIA Ada Lovelace architecture whitepaper (GeForce RTX 4090): 24 GB GDDR6X, 1,008 GB/s, BF16
  // tensor with FP32 accumulate 165.2 TFLOPS dense (330.3 sparse), FP32 82.6 TFLOPS. Whitepaper figures.
  rtx4090: {
    key: 'rtx4090',
    name: 'NVIDIA GeForce RTX 4090 24GB',
    memoryGb: 24,
    bandwidthGbPerS: 1008,
    bf16Tflops: 165.2,
    fp32Tflops: 82.6,
    usdPerHour: 0.4,
    source: 'NVIDIA Ada Lovelace whitepaper (RTX 4090), datasheet figures',
  },
  // Not a datasheet: a nominal 32-core x86 server socket with 8 channels of DDR5-4800 (8 x 38.4 =
  // 307 GB/s theoretical), 256 GB RAM, AVX-512 BF16 at ~2 GHz (~4 TFLOP/s bf16, ~2 FP32). Pass
  // --memory-gb / --bandwidth-gb-s / --usd-per-hour to describe a real machine.
  cpu: {
    key: 'cpu',
    name: 'x86 server socket (nominal, 8x DDR5-4800)',
    memoryGb: 256,
    bandwidthGbPerS: 307,
    bf16Tflops: 4,
    fp32Tflops: 2,
    usdPerHour: 1.0,
    source: 'nominal figures (not a datasheet): 8-channel DDR5-4800 theoretical bandwidth',
  },
};

export const ACCELERATOR_KEYS: readonly string[] = Object.keys(ACCELERATORS);

/** The spec for a --gpu value (case-insensitive), or null when unknown. */
export function acceleratorSpec(key: string): AcceleratorSpec | null {
  const k = key.toLowerCase();
  return Object.hasOwn(ACCELERATORS, k) ? ACCELERATORS[k]! : null;
}
