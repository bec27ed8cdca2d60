// Test helper: a stand-in libnvidia-ml (two GPUs; GPU 1 does not report its SM clock; utilisation
// and power move with every reading) compiled here with the system C compiler, so the CPU addon's
// real dlopen + NVML-reading path runs on machines without an NVIDIA driver. null when no compiler.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = `
typedef struct { unsigned int gpu, memory; } U;
typedef struct { unsigned long long total, free, used; } M;
static unsigned int reads = 0;
int nvmlInit_v2(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned int* n) { *n = 2; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void** d) { *d = (void*)(unsigned long)(i + 1); return 0; }
int nvmlDeviceGetName(void* d, char* b, unsigned int n) {
  const char* s = "Stand-in GPU"; unsigned int i = 0; for (; s[i] && i + 1 < n; i++) b[i] = s[i]; b[i] = 0; return 0;
}
int nvmlDeviceGetUtilizationRates(void* d, U* u) { u->gpu = (unsigned long)d == 1 ? 42 : 40 + (reads++ * 7) % 50; u->memory = 7; return 0; }
int nvmlDeviceGetMemoryInfo(void* d, M* m) { m->total = 80ULL << 30; m->used = 20ULL << 30; m->free = 60ULL << 30; return 0; }
int nvmlDeviceGetPowerUsage(void* d, unsigned int* p) { *p = (unsigned long)d == 1 ? 250500 : 180000 + (reads * 13) % 90 * 1000; return 0; }
int nvmlDeviceGetTemperature(void* d, int s, unsigned int* t) { *t = 61; return 0; }
int nvmlDeviceGetClockInfo(void* d, int t, unsigned int* c) { if ((unsigned long)d == 2) return 3; *c = 1980; return 0; }
`;

export interface FakeNvml {
  readonly library: string;
  dispose(): void;
}

/** Build the stand-in; null (with why) when there is no working C compiler. */
export function buildFakeNvml(): FakeNvml | string {
  const cc = process.env.CC ?? 'cc';
  if (spawnSync(cc, ['--version']).status !== 0) return `no C compiler (${cc}) to build the stand-in libnvidia-ml`;
  const dir = mkdtempSync(join(tmpdir(), 'tm-nvml-'));
  writeFileSync(join(dir, 'fake.c'), SOURCE);
  const library = join(dir, 'libnvidia-ml-standin.so');
  const r = spawnSync(cc, ['-shared', '-fPIC', '-o', library, join(dir, 'fake.c')], { encoding: 'utf8' });
  if (r.status !== 0) return `the C compiler failed on the stand-in libnvidia-ml: ${r.stderr}`;
  return { library, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
