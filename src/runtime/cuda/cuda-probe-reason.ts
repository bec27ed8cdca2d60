// Words for a failed CUDA probe. The addon links cudart statically, so on a machine with no NVIDIA
// driver at all (no libcuda.so.1) cudart reports cudaErrorInsufficientDriver, "CUDA driver version
// is insufficient for CUDA runtime version": true to the letter, misleading to a user who has no
// driver. cudaDriverGetVersion returns 0 exactly when no driver is installed, so that case gets its
// own message; a real but too-old driver keeps cudart's words plus both versions.

/** CUDA's integer version (12040) as "12.4"; null for 0 (none). */
export function cudaVersionString(v: number): string | null {
  return v > 0 ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : null;
}

/** The reason to show for a probe that found no usable device. */
export function cudaProbeReason(rawReason: string, driverVersion: number, runtimeVersion: number): string {
  const noDriverErrors = ['cudaErrorInsufficientDriver', 'cudaErrorNoDevice', 'cudaErrorInitializationError'];
  if (driverVersion === 0 && noDriverErrors.some((e) => rawReason.includes(e))) {
    return 'no NVIDIA driver found: libcuda.so.1 is not installed or not loadable';
  }
  if (rawReason.includes('cudaErrorInsufficientDriver')) {
    const drv = cudaVersionString(driverVersion) ?? '?';
    const rt = cudaVersionString(runtimeVersion) ?? '?';
    return `the NVIDIA driver is too old: it supports CUDA ${drv}, the addon's runtime needs CUDA ${rt} (update the driver) [${rawReason}]`;
  }
  return rawReason;
}
