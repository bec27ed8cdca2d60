// CUDA graphs for the addon context: capture the stream into an instantiated graph, replay it.
#include "cuda_ctx.h"

namespace tmcuda {

// ------------------------------------------------------------------------------------ CUDA graphs
// graphBegin(): start capturing this context's stream. Launchers called until graphEnd are recorded,
// not run. Thread-local mode: other threads (async reads) are unaffected; this thread may not call
// unsafe APIs (cudaMalloc, synchronisation), which the glue also refuses up front (noCapture).
Napi::Value Ctx::GraphBegin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  noCapture(env, "graphBegin");
  cudaSetDevice(device);
  CK(env, "cudaStreamBeginCapture", cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  capturing = true;
  return env.Undefined();
}
// graphEnd() -> id: end the capture and instantiate the graph (ids are never reused).
Napi::Value Ctx::GraphEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  if (!capturing) throw Napi::Error::New(env, "cuda_error: graph_capture: graphEnd without graphBegin");
  capturing = false;
  cudaGraph_t g = nullptr;
  cudaError_t e = cudaStreamEndCapture(stream, &g);
  if (e != cudaSuccess) {
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    throwCuda(env, "graph_capture: cudaStreamEndCapture", e);
  }
  cudaGraphExec_t exec = nullptr;
  e = cudaGraphInstantiate(&exec, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess) { cudaGetLastError(); throwCuda(env, "graph_capture: cudaGraphInstantiate", e); }
  const int id = nextGraphId++;
  graphs[id] = exec;
  return Napi::Number::New(env, id);
}
// graphAbort(): end a capture that failed half way and drop it (no-op when not capturing).
Napi::Value Ctx::GraphAbort(const Napi::CallbackInfo& info) {
  if (!disposed) abortCapture();
  return info.Env().Undefined();
}
// graphLaunch(id): enqueue the graph on the stream (stream order with every other op).
Napi::Value Ctx::GraphLaunch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  noCapture(env, "graphLaunch");
  auto it = graphs.find(I(info[0]));
  if (it == graphs.end()) throw Napi::Error::New(env, "cuda_error: graph_launch: unknown graph id " + std::to_string(I(info[0])));
  CK(env, "graph_launch: cudaGraphLaunch", cudaGraphLaunch(it->second, stream));
  return env.Undefined();
}
// graphDestroy(id): drop one graph; id 0 drops all. Work already enqueued keeps running.
Napi::Value Ctx::GraphDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed) return env.Undefined();
  noCapture(env, "graphDestroy");
  const int id = I(info[0]);
  if (id == 0) {
    destroyGraphs();
  } else {
    auto it = graphs.find(id);
    if (it != graphs.end()) { cudaGraphExecDestroy(it->second); graphs.erase(it); }
  }
  return env.Undefined();
}

}  // namespace tmcuda
