// NVML sampling entry point of the CPU addon (nvml_sampler.cpp): libnvidia-ml by dlopen, read off
// the event loop. Registered by cpu_addon.cpp's init as `nvmlSample`.
#pragma once
#include <node_api.h>

napi_value tm_nvml_sample(napi_env env, napi_callback_info info);
