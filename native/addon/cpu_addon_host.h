// Host-level calls of the CPU addon that touch no engine: the read-bandwidth probe (bench), the
// allocator trim (idle memory release) and the GGUF block quantizer (convert to-gguf). Kept apart
// from cpu_addon.cpp, which owns engine handles.
#pragma once
#include <napi.h>

namespace tmill::addon {
void register_host_functions(Napi::Env env, Napi::Object exports);
}  // namespace tmill::addon
