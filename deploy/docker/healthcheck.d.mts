// Types for deploy/docker/healthcheck.mjs (plain JS: it runs in the image without TypeScript tooling).
export declare function reachableAddress(
  ifaces: Record<string, readonly { address: string; family: string | number; internal: boolean }[] | undefined>,
): string;
export declare function checkHealth(o: {
  host: string;
  port: number;
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}): Promise<{ ok: boolean; message: string }>;
