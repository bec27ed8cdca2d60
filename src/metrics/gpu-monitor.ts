// GPU readings from NVML (utilisation, memory, power, temperature, SM clock) through the CPU addon's
// nvmlSample, which dlopens libnvidia-ml and reads it on a worker thread: nothing here runs inside
// an engine step or blocks the event loop. Without the library (a CPU machine) every reading is
// absent, never an error; the Prometheus gauges are registered only once a GPU has been seen.

import { Gauge, type Registry } from 'prom-client';
import { loadCpuAddon, type NvmlSample } from '../runtime/native.js';

export const DEFAULT_NVML_LIBRARY = 'libnvidia-ml.so.1';

export type NvmlReader = (library: string) => Promise<NvmlSample>;

/** The CPU addon's reader, or one that explains why there is none. */
export function addonNvmlReader(): NvmlReader {
  const load = loadCpuAddon();
  const fn = load.addon?.nvmlSample;
  if (load.addon === null || typeof fn !== 'function') {
    const reason = load.addon === null ? `CPU addon unavailable (${load.reason})` : 'the CPU addon was built without NVML sampling';
    return () => Promise.resolve({ available: false, reason, devices: [] });
  }
  return (library) => fn.call(load.addon, library);
}

export class GpuMonitor {
  private last: NvmlSample | null = null;
  private inFlight: Promise<NvmlSample> | null = null;
  private readonly library: string;
  private readonly read: NvmlReader;

  constructor(opts: { library?: string; reader?: NvmlReader } = {}) {
    this.library = opts.library ?? DEFAULT_NVML_LIBRARY;
    this.read = opts.reader ?? addonNvmlReader();
  }

  /** The latest reading (null before the first one finished). */
  get latest(): NvmlSample | null {
    return this.last;
  }

  /** Take a reading; a call while one is running shares it (samples never pile up). */
  sample(): Promise<NvmlSample> {
    this.inFlight ??= this.read(this.library)
      .catch(
        (e: unknown): NvmlSample => ({
          available: false,
          reason: `NVML read failed: ${e instanceof Error ? e.message : String(e)}`,
          devices: [],
        }),
      )
      .then((s) => {
        this.last = s;
        this.inFlight = null;
        return s;
      });
    return this.inFlight;
  }
}

type DeviceField = 'utilizationPct' | 'memoryUsedBytes' | 'memoryTotalBytes' | 'powerWatts' | 'temperatureC' | 'smClockMHz';

const GAUGES: readonly { name: string; help: string; field: DeviceField; scale: number }[] = [
  {
    name: 'tokenmill_gpu_utilization_ratio',
    help: "GPU busy share over NVML's last sample period (0..1).",
    field: 'utilizationPct',
    scale: 0.01,
  },
  { name: 'tokenmill_gpu_memory_used_bytes', help: 'GPU memory in use (all processes).', field: 'memoryUsedBytes', scale: 1 },
  { name: 'tokenmill_gpu_memory_total_bytes', help: 'GPU memory installed.', field: 'memoryTotalBytes', scale: 1 },
  { name: 'tokenmill_gpu_power_watts', help: 'GPU board power draw.', field: 'powerWatts', scale: 1 },
  { name: 'tokenmill_gpu_temperature_celsius', help: 'GPU core temperature.', field: 'temperatureC', scale: 1 },
  { name: 'tokenmill_gpu_sm_clock_hertz', help: 'GPU SM clock.', field: 'smClockMHz', scale: 1e6 },
];

/**
 * Register the GPU gauges on registry the first time monitor has seen a device; before that (and
 * forever on a machine without NVML) they are absent from the exposition. Returns true once done.
 */
export function registerGpuGauges(registry: Registry, monitor: GpuMonitor): boolean {
  const s = monitor.latest;
  if (s === null || !s.available || s.devices.length === 0) return false;
  for (const g of GAUGES) {
    new Gauge({
      name: g.name,
      help: g.help,
      labelNames: ['gpu', 'name'],
      registers: [registry],
      collect() {
        this.reset();
        for (const d of monitor.latest?.devices ?? []) {
          const v = d[g.field];
          if (v !== null) this.set({ gpu: String(d.index), name: d.name }, v * g.scale);
        }
      },
    });
  }
  return true;
}
