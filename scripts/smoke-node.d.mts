// Types for scripts/smoke-node.mjs (plain JS: it runs under freshly fetched Node binaries).
export declare const PINNED_NODE_VERSIONS: readonly string[];
