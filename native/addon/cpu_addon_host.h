// Host-level calls of the CPU addon that touch no engine: the read-bandwidth probe (bench) and the
// allocator trim (idle memory release). Kept apart from cpu_addon.cpp, which owns engine handles.
#pragma once
#include <napi.h>

namespace tmill::addon {
void register_host_functions(Napi::Env env, Napi::Object exports);
}  // namespace tmill::addon
