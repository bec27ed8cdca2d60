# Native addons built by scripts/build-native.mjs (node-gyp, offline, Node headers from nodedir).
# The op kernels (native/cpu/{matmul,matmul_q8,matmul_ggml,norm,elementwise,gather,attention,kernel_table}.cpp) are
# compiled three times, once per ISA static library with its own -m flags and -DTM_ISA=<name>;
# the addon links all three and picks one at run time (native/cpu/dispatch.cpp).
{
  'variables': {
    'tm_kernel_sources': [
      'native/cpu/matmul.cpp',
      'native/cpu/matmul_q8.cpp',
      'native/cpu/matmul_q8_amx.cpp',
      'native/cpu/quantize_rows16.cpp',
      'native/cpu/matmul_ggml.cpp',
      'native/cpu/matmul_ggml_amx.cpp',
      'native/cpu/matmul_ggml_amx_decode.cpp',
      'native/cpu/norm.cpp',
      'native/cpu/elementwise.cpp',
      'native/cpu/gather.cpp',
      'native/cpu/attention.cpp',
      'native/cpu/kernel_table.cpp',
    ],
    'tm_common_cflags': ['-O3', '-fPIC', '-ffp-contract=off', '-fno-math-errno', '-fno-strict-aliasing', '-Wall', '-Wno-unused-function'],
  },
  'target_defaults': {
    'cflags_cc!': ['-fno-exceptions', '-std=gnu++1y', '-std=gnu++14'],
    'cflags_cc': ['-std=gnu++17'],
  },
  'targets': [
    {
      'target_name': 'tm_cpu_avx512',
      'type': 'static_library',
      'sources': ['<@(tm_kernel_sources)'],
      'defines': ['TM_ISA=avx512'],
      'cflags': ['<@(tm_common_cflags)', '-Wno-uninitialized', '-Wno-maybe-uninitialized', '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx2', '-mfma', '-mf16c'],
    },
    {
      'target_name': 'tm_cpu_avx2',
      'type': 'static_library',
      'sources': ['<@(tm_kernel_sources)'],
      'defines': ['TM_ISA=avx2'],
      'cflags': ['<@(tm_common_cflags)', '-mavx2', '-mfma', '-mf16c'],
    },
    {
      'target_name': 'tm_cpu_generic',
      'type': 'static_library',
      'sources': ['<@(tm_kernel_sources)'],
      'defines': ['TM_ISA=generic'],
      'cflags': ['<@(tm_common_cflags)'],
    },
    {
      'target_name': 'tokenmill_cpu',
      'sources': [
        'native/addon/cpu_addon.cpp',
        'native/addon/cpu_addon_host.cpp',
        'native/addon/nvml_sampler.cpp',
        'native/cpu/engine.cpp',
        'native/cpu/engine_attention.cpp',
        'native/cpu/engine_quant.cpp',
        'native/cpu/engine_ggml.cpp',
        'native/cpu/thread_pool.cpp',
        'native/cpu/read_probe.cpp',
        'native/cpu/ggml_quantize.cpp',
        'native/cpu/file_map.cpp',
        'native/cpu/dispatch.cpp',
      ],
      'dependencies': ['tm_cpu_avx512', 'tm_cpu_avx2', 'tm_cpu_generic'],
      # node-addon-api (as the CUDA addon): C++ exceptions carry JS errors out of the glue.
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_CPP_EXCEPTIONS', 'NAPI_VERSION=8'],
      'cflags': ['<@(tm_common_cflags)', '-pthread'],
      'cflags_cc': ['-fexceptions'],
      'ldflags': ['-pthread'],
      'libraries': ['-ldl'],
    },
  ],
}
