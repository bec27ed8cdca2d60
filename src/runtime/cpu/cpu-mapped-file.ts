// Backend.mapWeightFile for the CPU backend: a weight file mapped read-only by the addon
// (native/cpu/file_map.h: PROT_READ, MAP_PRIVATE, the pages are the page cache's), with tensors whose
// engine buffers point into the mapping, so GGUF weights used as stored are never copied into the heap.
// Every range is checked against the mapped size before the addon sees it (and again natively).
import type { MappedWeightFile, Tensor } from '../backend.js';
import { numelOf } from '../backend.js';
import { DTYPE_BYTES, type DType } from '../dtype.js';
import type { CpuAddon, MappedFileHandle } from '../native.js';
import { TokenmillError } from '../../util/errors.js';
import { log } from '../../util/logger.js';

/** What the mapped file needs from its backend: a tensor over [byteOffset, +bytes) of the mapping. */
export type AdoptMapped = (handle: MappedFileHandle, shape: readonly number[], dtype: DType, byteOffset: number) => Tensor;

/** Maps `path`, or null when the addon cannot (old binary, no mmap on this platform, mmap failed). */
export function mapCpuWeightFile(addon: CpuAddon, path: string, adopt: AdoptMapped): MappedWeightFile | null {
  if (addon.mapFile === undefined || addon.mappingView === undefined || addon.allocMapped === undefined) return null;
  let handle: MappedFileHandle;
  let sizeBytes: number;
  try {
    [handle, sizeBytes] = addon.mapFile(path, -1);
  } catch (e) {
    // The read path reports an unreadable file with its own typed error.
    log.debug(`cpu backend: cannot map ${path} (${(e as Error).message}); reading it instead`);
    return null;
  }
  let open = true;
  const check = (offset: number, length: number, what: string): void => {
    if (!open) throw new TokenmillError('invalid_argument', `${path}: mapped file used after close()`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > sizeBytes) {
      throw new TokenmillError(
        'invalid_argument',
        `${path}: ${what} [${offset}, +${length}) lies outside the ${sizeBytes}-byte mapped file`,
        {
          details: { file: path },
        },
      );
    }
  };
  const mapView = addon.mappingView.bind(addon);
  return {
    sizeBytes,
    bytes(offset, length) {
      check(offset, length, 'bytes');
      return new Uint8Array(mapView(handle, offset, length));
    },
    tensor(shape, dtype, byteOffset) {
      check(byteOffset, numelOf(shape) * DTYPE_BYTES[dtype], 'tensor');
      return adopt(handle, shape, dtype, byteOffset);
    },
    close() {
      if (!open) return;
      open = false;
      addon.unmapFile?.(handle);
    },
  };
}
