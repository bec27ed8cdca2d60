#!/bin/sh
# Container entry point: `docker run IMAGE [serve] [ARGS...]` runs `tokenmill serve ARGS...` bound to
# TOKENMILL_HOST:TOKENMILL_PORT (default 0.0.0.0:8000). Host and port come from the environment and
# are always passed, so user arguments (e.g. just `--model /models/x`) cannot leave the server on
# the container's loopback where neither -p nor the HEALTHCHECK (which follows TOKENMILL_PORT) reach
# it. A --host/--port argument that disagrees with them is refused: set -e TOKENMILL_PORT=N instead.
# Other subcommands pass through: `docker run IMAGE doctor`, `... generate --model ...`, `--version`.
# TOKENMILL_BIN (default: tokenmill) is the program run; tests point it at a stub.
set -eu

bin="${TOKENMILL_BIN:-tokenmill}"
host="${TOKENMILL_HOST:-0.0.0.0}"
port="${TOKENMILL_PORT:-8000}"

case "${1:-}" in
  generate|convert|doctor|plan|bench|help|--help|-h|--version|-V)
    exec "$bin" "$@" ;;
  serve)
    shift ;;
esac

refuse() {
  echo "entrypoint: $1 $2 disagrees with $3=$4; inside the image set the address with -e $3=... (the health check follows it), not with $1" >&2
  exit 2
}

# Check the user's --host/--port (both `--port N` and `--port=N`) against the environment.
prev=''
for a in "$@"; do
  case "$prev" in
    --host) [ "$a" = "$host" ] || refuse --host "$a" TOKENMILL_HOST "$host" ;;
    --port) [ "$a" = "$port" ] || refuse --port "$a" TOKENMILL_PORT "$port" ;;
  esac
  case "$a" in
    --host=*) [ "${a#--host=}" = "$host" ] || refuse --host "${a#--host=}" TOKENMILL_HOST "$host" ;;
    --port=*) [ "${a#--port=}" = "$port" ] || refuse --port "${a#--port=}" TOKENMILL_PORT "$port" ;;
  esac
  prev="$a"
done

exec "$bin" serve --host "$host" --port "$port" "$@"
