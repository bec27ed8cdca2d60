// f32 rows -> ggml blocks, the native twin of src/model/convert/ggml-quantize.ts (`convert to-gguf
// --type`): the same arithmetic operation for operation (doubles where the TS computes in doubles,
// floats where it rounds with Math.fround, no contraction), so its bytes equal the TS reference's
// bit for bit (test/convert/ggml-quantize-native.test.ts). The TS reference took ~15 minutes for a
// 1B-parameter Q4_K_M file on one core; this runs the rows on every core.
#pragma once
#include <cstdint>

namespace tmill { namespace cpu {

// Which copy of the search loops runs (ggml_quantize_lanes.inc); every copy writes the same bytes.
enum class QuantIsa { kAuto = 0, kBaseline = 1, kAvx2 = 2, kAvx512 = 3 };
bool quantize_isa_available(QuantIsa isa);

// Quantizes the [N, K] row-major matrix x into N rows of `type` blocks (ggml type ids: Q4_0 2, Q4_1 3,
// Q5_0 6, Q5_1 7, Q8_0 8, Q4_K 12, Q5_K 13, Q6_K 14) at out (N * row bytes), on num_threads threads.
// The caller has checked that K is a multiple of the block, that out is large enough and that every
// weight is finite. Returns false for a type it does not write or an isa this CPU cannot run.
bool quantize_ggml_rows(int32_t type, const float* x, int64_t N, int64_t K, uint8_t* out, int num_threads,
                        QuantIsa isa = QuantIsa::kAuto);

// Bytes of one row of K weights of `type`, 0 for a type quantize_ggml_rows does not write or a K that
// is not a multiple of its block.
int64_t ggml_quantize_row_bytes(int32_t type, int64_t K);

}}  // namespace tmill::cpu
