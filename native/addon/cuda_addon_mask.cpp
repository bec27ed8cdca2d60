// Grammar bitmasks on the device: applyTokenBitmask(logitsPtr, packed Int32Array, numMasked, vocab, words)
// stages the step's packed masks (row ids, then xgrammar's int32 words per masked row) in one pinned
// host buffer, copies them with one cudaMemcpyAsync into one device buffer and launches the mask
// kernel (sample.cu) on the context's stream, so only constrained rows' masks cross per step and the
// host returns at once. The staging buffer is reused only after the previous copy out of it finished.
#include "cuda_ctx.h"

namespace tmcuda {

Napi::Value Ctx::ApplyTokenBitmask(const Napi::CallbackInfo& i) {
  Napi::Env env = i.Env();
  check(env);
  noCapture(env, "applyTokenBitmask");
  float* logits = (float*)P(i[0]);
  Napi::Int32Array packed = i[1].As<Napi::Int32Array>();
  const int numMasked = I(i[2]), vocab = I(i[3]), words = I(i[4]);
  if (numMasked <= 0) return env.Undefined();
  if (vocab <= 0 || words <= 0 || numMasked > 65535 || packed.ElementLength() != (size_t)numMasked * (size_t)(words + 1)) {
    throw Napi::Error::New(env, "cuda_error: applyTokenBitmask: packed masks do not match numMasked x (words + 1)");
  }
  const size_t bytes = packed.ElementLength() * 4;
  cudaSetDevice(device);
  if (maskEv == nullptr) CK(env, "cudaEventCreate", cudaEventCreateWithFlags(&maskEv, cudaEventDisableTiming));
  if (maskEvPending) {
    CK(env, "applyTokenBitmask", cudaEventSynchronize(maskEv));  // the last copy out of maskPin is done
    maskEvPending = false;
  }
  if (maskPinBytes < bytes) {
    if (maskPin) cudaFreeHost(maskPin);
    maskPin = nullptr;
    maskPinBytes = 0;
    CK(env, "applyTokenBitmask cudaMallocHost", cudaMallocHost(&maskPin, bytes));
    maskPinBytes = bytes;
  }
  if (maskDevBytes < bytes) {
    if (maskDev) {
      CK(env, "applyTokenBitmask", cudaStreamSynchronize(stream));  // earlier kernels may still read it
      cudaFree(maskDev);
    }
    maskDev = nullptr;
    maskDevBytes = 0;
    CK(env, "applyTokenBitmask cudaMalloc", cudaMalloc(&maskDev, bytes));
    maskDevBytes = bytes;
  }
  memcpy(maskPin, packed.Data(), bytes);
  CK(env, "applyTokenBitmask", cudaMemcpyAsync(maskDev, maskPin, bytes, cudaMemcpyHostToDevice, stream));
  CK(env, "cudaEventRecord", cudaEventRecord(maskEv, stream));
  maskEvPending = true;
  CK(env, "applyTokenBitmask", launch_apply_token_bitmask(logits, (const int32_t*)maskDev, numMasked, vocab, words, stream));
  return env.Undefined();
}

}  // namespace tmcuda
