# tokenmill serving image: a CUDA devel stage builds the CPU and CUDA addons (nvcc) and the
# TypeScript (npm ci runs scripts/build-native.mjs, then tsc); the runtime stage is the CUDA runtime
# image with Node 22, the built addons, dist/ and production dependencies only, run as a non-root
# user. Build: docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t tokenmill:0.1.0 .
# Run:   docker run --gpus all -p 8000:8000 -v /models:/models:ro tokenmill:0.1.0 --model /models/NAME
#        (arguments go to `tokenmill serve`; the entry point always binds TOKENMILL_HOST:TOKENMILL_PORT,
#        default 0.0.0.0:8000, so -e TOKENMILL_PORT=9000 -p 9000:9000 moves it and the health check with it)
# Lint:  hadolint Dockerfile (where available); CI checks its structure in test/deploy/.

# Node 22 (LTS) comes from the official image (binary, npm and headers); pinned to the 22.x version
# CI smokes (scripts/smoke-node.mjs PINNED_NODE_VERSIONS).
FROM node:22.23.5-bookworm-slim AS node

FROM nvidia/cuda:13.0.0-devel-ubuntu24.04 AS build
# node-gyp needs python3, make and a C++ compiler for the CPU addon.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
COPY --from=node /usr/local/include/node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
WORKDIR /app
# SASS for A100 (80), A10/A10G/RTX 30 (86), L4/L40S/RTX 4090 (89), H100/H200 (90), PTX for the highest.
ENV TOKENMILL_CUDA_ARCHS=80,86,89,90 \
    npm_config_nodedir=/usr/local
COPY package.json package-lock.json binding.gyp tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY native ./native
COPY src ./src
COPY bin ./bin
# npm ci: the install script builds both addons (nvcc is on PATH here), prepare compiles dist/.
RUN npm ci \
 && test -f build/Release/tokenmill_cpu.node \
 && test -f build/Release/tokenmill_cuda.node \
 && test -f dist/cli/main.js \
 && npm prune --omit=dev

FROM nvidia/cuda:13.0.0-runtime-ubuntu24.04 AS runtime
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 tokenmill \
 && useradd --system --uid 10001 --gid tokenmill --home-dir /home/tokenmill --create-home tokenmill \
 && mkdir -p /var/cache/tokenmill \
 && chown tokenmill:tokenmill /var/cache/tokenmill
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/build/Release/tokenmill_cpu.node /app/build/Release/tokenmill_cuda.node ./build/Release/
COPY web ./web
COPY deploy/docker/entrypoint.sh deploy/docker/healthcheck.mjs ./deploy/docker/
RUN ln -s /app/bin/tokenmill.js /usr/local/bin/tokenmill
# No .git in the image: the commit travels as a build argument into the environment fingerprint.
ARG GIT_COMMIT=unknown
ENV NODE_ENV=production \
    TOKENMILL_HOST=0.0.0.0 \
    TOKENMILL_PORT=8000 \
    TOKENMILL_CACHE=/var/cache/tokenmill \
    TOKENMILL_GIT_COMMIT=${GIT_COMMIT}
USER tokenmill
EXPOSE 8000
# GET /health on the container's own network address at TOKENMILL_PORT (not loopback): unhealthy when
# clients could not reach the API, e.g. a server bound to 127.0.0.1 inside the container.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs"]
# The entry point runs `tokenmill serve --host $TOKENMILL_HOST --port $TOKENMILL_PORT "$@"` (other
# subcommands such as `doctor` pass through), so user arguments never drop the bind address.
ENTRYPOINT ["/bin/sh", "/app/deploy/docker/entrypoint.sh"]
