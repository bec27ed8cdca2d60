// Injected first into every GPU-suite bundle (prepare.sh: esbuild --inject). A bundle does not sit
// above build/Release, so run-suite.sh names the CUDA addon it built or unpacked in
// TOKENMILL_CUDA_ADDON; this maps that variable (and TOKENMILL_CPU_ADDON) to the native loader as the
// CLI does, since the bundled tests and benches build backends directly, without the CLI.
import { addonPathsFromEnv } from '../../src/cli/env.js';
import { configureNativeAddons } from '../../src/runtime/native.js';

configureNativeAddons(addonPathsFromEnv());
