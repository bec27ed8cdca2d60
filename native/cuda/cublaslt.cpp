// cuBLASLt loaded at run time (dlopen), so the addon builds without cuBLAS headers or libraries and
// runs without them (callers fall back to our own GEMM). We declare only what we use; the values
// are those of the public cuBLAS headers/docs (cublasLt.h, cublas_api.h, library_types.h):
//   CUBLAS_COMPUTE_32F = 68, CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLASLT_MATMUL_DESC_TRANSA = 3,
//   CUBLASLT_MATMUL_DESC_TRANSB = 4, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1 (uint64),
//   cudaDataType CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 (from library_types.h here),
//   cublasLtMatmulAlgo_t = { uint64_t data[8] }, heuristic result = { algo, size_t workspaceSize,
//   cublasStatus_t state, float wavesCount, int reserved[4] }.
// Row-major out[T,N] = x[T,K] . w[N,K]^T is computed as column-major D[N,T] = op_T(A[K,N]) . B[K,T].
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <library_types.h>
#include <stdio.h>
#include <string.h>
#include <map>
#include <mutex>
#include "tm_cuda.h"

namespace {
typedef int lt_status;
typedef void* lt_handle;
typedef void* lt_desc;
typedef void* lt_layout;
typedef void* lt_pref;
struct lt_algo { uint64_t data[8]; };
struct lt_heur { lt_algo algo; size_t workspaceSize; int state; float wavesCount; int reserved[4]; };

const int COMPUTE_32F = 68, OP_N = 0, OP_T = 1, DESC_TRANSA = 3, DESC_TRANSB = 4, PREF_MAX_WS = 1;

struct Api {
  lt_status (*create)(lt_handle*);
  lt_status (*destroy)(lt_handle);
  lt_status (*descCreate)(lt_desc*, int computeType, cudaDataType scaleType);
  lt_status (*descDestroy)(lt_desc);
  lt_status (*descSet)(lt_desc, int attr, const void* buf, size_t size);
  lt_status (*layoutCreate)(lt_layout*, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld);
  lt_status (*layoutDestroy)(lt_layout);
  lt_status (*prefCreate)(lt_pref*);
  lt_status (*prefDestroy)(lt_pref);
  lt_status (*prefSet)(lt_pref, int attr, const void* buf, size_t size);
  lt_status (*heuristic)(lt_handle, lt_desc, lt_layout, lt_layout, lt_layout, lt_layout, lt_pref, int, lt_heur*, int*);
  lt_status (*matmul)(lt_handle, lt_desc, const void* alpha, const void* A, lt_layout, const void* B, lt_layout,
                      const void* beta, const void* C, lt_layout, void* D, lt_layout, const lt_algo*, void* ws,
                      size_t wsSize, cudaStream_t);
};
Api api;
int loadState = 0;  // 0 untried, 1 ok, -1 failed
char loadWhy[256] = "";
std::mutex mu;

cudaDataType cuda_type(int dt) { return dt == TM_BF16 ? CUDA_R_16BF : dt == TM_F16 ? CUDA_R_16F : CUDA_R_32F; }

template <typename F> bool sym(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) { snprintf(loadWhy, sizeof loadWhy, "symbol %s missing", name); return false; }
  return true;
}
}  // namespace

extern "C" int tm_cublaslt_load(const char* explicitPath, char* whyNot, size_t whyNotLen) {
  std::lock_guard<std::mutex> lock(mu);
  if (loadState == 0) {
    const char* names[] = {explicitPath, "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
                           "/usr/local/cuda/lib64/libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.12"};
    void* lib = nullptr;
    for (const char* n : names) {
      if (n == nullptr || n[0] == 0) continue;
      lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
    }
    if (!lib) {
      snprintf(loadWhy, sizeof loadWhy, "libcublasLt not found (%s)", dlerror());
      loadState = -1;
    } else {
      bool ok = sym(lib, "cublasLtCreate", &api.create) && sym(lib, "cublasLtDestroy", &api.destroy) &&
                sym(lib, "cublasLtMatmulDescCreate", &api.descCreate) && sym(lib, "cublasLtMatmulDescDestroy", &api.descDestroy) &&
                sym(lib, "cublasLtMatmulDescSetAttribute", &api.descSet) &&
                sym(lib, "cublasLtMatrixLayoutCreate", &api.layoutCreate) &&
                sym(lib, "cublasLtMatrixLayoutDestroy", &api.layoutDestroy) &&
                sym(lib, "cublasLtMatmulPreferenceCreate", &api.prefCreate) &&
                sym(lib, "cublasLtMatmulPreferenceDestroy", &api.prefDestroy) &&
                sym(lib, "cublasLtMatmulPreferenceSetAttribute", &api.prefSet) &&
                sym(lib, "cublasLtMatmulAlgoGetHeuristic", &api.heuristic) && sym(lib, "cublasLtMatmul", &api.matmul);
      loadState = ok ? 1 : -1;
    }
  }
  if (loadState != 1 && whyNot && whyNotLen) snprintf(whyNot, whyNotLen, "%s", loadWhy);
  return loadState == 1;
}

extern "C" int tm_cublaslt_create(void** handle) {
  if (loadState != 1) return -1;
  return api.create(handle);
}

extern "C" void tm_cublaslt_forget(void* handle);
extern "C" void tm_cublaslt_destroy(void* handle) {
  if (loadState != 1 || !handle) return;
  tm_cublaslt_forget(handle);
  api.destroy(handle);
}

namespace {
struct Plan { lt_desc desc; lt_layout la, lb, lc; lt_heur heur; int status; };
struct Key {
  void* h; int dtOut, dtIn, T, N, K; size_t ws;
  bool operator<(const Key& o) const {
    return memcmp(this, &o, sizeof(Key)) < 0;
  }
};
std::map<Key, Plan> plans;  // one entry per (handle, shape, dtypes); descriptors reused across calls

Plan make_plan(const Key& k) {
  Plan p = {};
  int st = api.descCreate(&p.desc, COMPUTE_32F, CUDA_R_32F);
  const int32_t opT = OP_T, opN = OP_N;
  const uint64_t ws = k.ws;
  lt_pref pref = nullptr;
  if (st == 0) st = api.descSet(p.desc, DESC_TRANSA, &opT, sizeof opT);
  if (st == 0) st = api.descSet(p.desc, DESC_TRANSB, &opN, sizeof opN);
  if (st == 0) st = api.layoutCreate(&p.la, cuda_type(k.dtIn), (uint64_t)k.K, (uint64_t)k.N, k.K);
  if (st == 0) st = api.layoutCreate(&p.lb, cuda_type(k.dtIn), (uint64_t)k.K, (uint64_t)k.T, k.K);
  if (st == 0) st = api.layoutCreate(&p.lc, cuda_type(k.dtOut), (uint64_t)k.N, (uint64_t)k.T, k.N);
  if (st == 0) st = api.prefCreate(&pref);
  if (st == 0) st = api.prefSet(pref, PREF_MAX_WS, &ws, sizeof ws);
  int found = 0;
  if (st == 0) st = api.heuristic(k.h, p.desc, p.la, p.lb, p.lc, p.lc, pref, 1, &p.heur, &found);
  if (st == 0 && found < 1) st = 15;  // CUBLAS_STATUS_NOT_SUPPORTED
  if (pref) api.prefDestroy(pref);
  p.status = st;
  return p;
}
}  // namespace

extern "C" int tm_cublaslt_matmul(void* handle, void* out, int dtOut, const void* x, const void* w, int dtIn,
                                  int T, int N, int K, void* workspace, size_t workspaceBytes, cudaStream_t s) {
  if (loadState != 1 || !handle) return -1;
  Key key;
  memset(&key, 0, sizeof key);
  key.h = handle; key.dtOut = dtOut; key.dtIn = dtIn; key.T = T; key.N = N; key.K = K; key.ws = workspaceBytes;
  Plan* p;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = plans.find(key);
    if (it == plans.end()) it = plans.emplace(key, make_plan(key)).first;
    p = &it->second;
  }
  if (p->status != 0) return p->status;
  const float alpha = 1.f, beta = 0.f;
  return api.matmul(handle, p->desc, &alpha, w, p->la, x, p->lb, &beta, out, p->lc, out, p->lc, &p->heur.algo,
                    workspace, workspaceBytes, s);
}

// Drop the cached plans of one handle (called before the handle is destroyed).
extern "C" void tm_cublaslt_forget(void* handle) {
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = plans.begin(); it != plans.end();) {
    if (it->first.h != handle) { ++it; continue; }
    Plan& p = it->second;
    if (p.lc) api.layoutDestroy(p.lc);
    if (p.lb) api.layoutDestroy(p.lb);
    if (p.la) api.layoutDestroy(p.la);
    if (p.desc) api.descDestroy(p.desc);
    it = plans.erase(it);
  }
}
