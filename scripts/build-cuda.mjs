#!/usr/bin/env node
// Builds the CUDA addon build/Release/tokenmill_cuda.node: nvcc compiles native/cuda/*.cu (one process
// per file, in parallel), g++ compiles cublaslt.cpp and the N-API glue, cudart is linked statically
// so the addon needs only the driver at run time. Never fails the install: on any problem it warns
// and exits 0 (pass --strict to exit 1). Architectures (scripts/cuda-archs.mjs): TOKENMILL_CUDA_ARCHS=
// "80,86,89,90" if set (PTX for the highest embedded too), else the GPUs nvidia-smi reports, else one
// (sm_80) to prove the sources compile. NVCC=/path/to/nvcc (or --nvcc=PATH); TOKENMILL_CUDA_JOBS=n
// compiler processes at once (default: the cores; nvcc --threads uses cores left over).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { compileParallelism, gencodeArgs, selectCudaArchs } from './cuda-archs.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
// TOKENMILL_CUDA_OUT_DIR: where objects and the addon go (default build/cuda + build/Release).
const OUT_DIR = process.env.TOKENMILL_CUDA_OUT_DIR ? resolve(process.env.TOKENMILL_CUDA_OUT_DIR) : join(ROOT, 'build', 'cuda');
const ADDON = process.env.TOKENMILL_CUDA_OUT_DIR
  ? join(OUT_DIR, 'tokenmill_cuda.node')
  : join(ROOT, 'build', 'Release', 'tokenmill_cuda.node');

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

export function findNvcc() {
  const arg = process.argv.find((a) => a.startsWith('--nvcc='));
  const cands = [
    arg?.slice('--nvcc='.length),
    process.env.NVCC,
    which('nvcc'),
    process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin', 'nvcc'),
    '/usr/local/cuda-13.0/bin/nvcc',
    '/usr/local/cuda/bin/nvcc',
  ];
  return cands.find((p) => p && existsSync(p)) ?? null;
}

function run(cmd, args) {
  return new Promise((res) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => res({ code: 1, out: String(e) }));
    child.on('close', (code) => res({ code: code ?? 1, out }));
  });
}

async function pool(tasks, jobs) {
  const results = [];
  let next = 0;
  async function worker() {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  return results;
}

function nodeIncludeDir() {
  const cands = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    resolve(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  return cands.find((p) => p && existsSync(join(p, 'node_api.h'))) ?? null;
}

/** nvidia-smi's compute capabilities, or null when there is no nvidia-smi (no driver installed). */
function queryNvidiaSmi() {
  const r = spawnSync('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], { encoding: 'utf8', timeout: 15_000 });
  if (r.error && r.error.code === 'ENOENT') return null;
  return { status: r.status, stdout: r.stdout ?? '', error: r.error ? String(r.error.message) : (r.stderr ?? '') };
}

function newer(src, out) {
  return !existsSync(out) || statSync(src).mtimeMs > statSync(out).mtimeMs;
}

export async function buildCuda() {
  const nvcc = findNvcc();
  if (!nvcc) return { ok: false, reason: 'nvcc not found' };
  const cudaHome = [process.env.CUDA_HOME, resolve(dirname(realpathSync(nvcc)), '..'), '/usr/local/cuda-13.0', '/usr/local/cuda'].find(
    (d) => d && existsSync(join(d, 'include', 'cuda_runtime.h')),
  );
  if (!cudaHome) return { ok: false, reason: `CUDA headers not found next to ${nvcc} (set CUDA_HOME)` };
  const nodeInc = process.env.TOKENMILL_NODE_INCLUDE ?? nodeIncludeDir();
  if (!nodeInc) return { ok: false, reason: 'Node headers (node_api.h) not found' };
  let napiInc = process.env.TOKENMILL_NAPI_INCLUDE;
  if (!napiInc)
    try {
      napiInc = createRequire(join(ROOT, 'package.json'))('node-addon-api').include_dir;
      if (!napiInc.startsWith('/')) napiInc = join(ROOT, napiInc);
    } catch {
      return { ok: false, reason: 'node-addon-api not installed' };
    }
  let sel;
  try {
    sel = selectCudaArchs({ env: process.env, nvidiaSmi: process.env.TOKENMILL_CUDA_ARCHS ? null : queryNvidiaSmi() });
  } catch (e) {
    return { ok: false, reason: e.message };
  }
  const archs = sel.archs;
  console.log(
    `[build-cuda] architectures sm_${archs.join(', sm_')}${sel.ptx ? ` + PTX compute_${archs[archs.length - 1]}` : ''}: ${sel.reason}`,
  );
  const gencode = gencodeArgs(archs, sel.ptx);
  const targets = archs.length + (sel.ptx ? 1 : 0);
  mkdirSync(OUT_DIR, { recursive: true });
  mkdirSync(dirname(ADDON), { recursive: true });
  const cudaDir = join(ROOT, 'native', 'cuda');
  const headers = readdirSync(cudaDir)
    .filter((f) => f.endsWith('.h') || f.endsWith('.cuh'))
    .map((f) => join(cudaDir, f));
  const headerTime = Math.max(...headers.map((h) => statSync(h).mtimeMs));
  const archTag = archs.join('_') + (sel.ptx ? '_ptx' : '');
  const tasks = [];
  const objs = [];
  for (const f of readdirSync(cudaDir).sort()) {
    const src = join(cudaDir, f);
    if (f.endsWith('.cu')) {
      const obj = join(OUT_DIR, `${f.replace(/\.cu$/, '')}.${archTag}.o`);
      objs.push(obj);
      if (newer(src, obj) || statSync(obj).mtimeMs < headerTime) {
        tasks.push(
          Object.assign(
            (threads) =>
              run(nvcc, [
                '-O3',
                '-std=c++17',
                '-Xcompiler',
                '-fPIC',
                ...gencode,
                ...(threads > 1 ? ['--threads', String(threads)] : []),
                '-c',
                src,
                '-o',
                obj,
              ]).then((r) => ({ ...r, f })),
            { cost: 1e12 + statSync(src).size },
          ),
        );
      }
    } else if (f.endsWith('.cpp')) {
      const obj = join(OUT_DIR, `${f.replace(/\.cpp$/, '')}.o`);
      objs.push(obj);
      if (newer(src, obj) || statSync(obj).mtimeMs < headerTime) {
        tasks.push(
          Object.assign(
            () => run('g++', ['-O2', '-std=c++17', '-fPIC', `-I${cudaHome}/include`, '-c', src, '-o', obj]).then((r) => ({ ...r, f })),
            { cost: statSync(src).size },
          ),
        );
      }
    }
  }
  // N-API glue: cuda_addon*.cpp share native/addon/cuda_ctx.h (the addon context).
  const addonDir = join(ROOT, 'native', 'addon');
  const glueHeaderTime = Math.max(headerTime, statSync(join(addonDir, 'cuda_ctx.h')).mtimeMs);
  for (const g of readdirSync(addonDir)
    .filter((x) => /^cuda_addon.*\.cpp$/.test(x))
    .sort()) {
    const glue = join(addonDir, g);
    const glueObj = join(OUT_DIR, g.replace(/\.cpp$/, '.o'));
    objs.push(glueObj);
    if (newer(glue, glueObj) || statSync(glueObj).mtimeMs < glueHeaderTime) {
      tasks.push(
        Object.assign(
          () =>
            run('g++', [
              '-O2',
              '-std=c++17',
              '-fPIC',
              '-fexceptions',
              '-DNAPI_CPP_EXCEPTIONS',
              '-DNAPI_VERSION=8',
              `-I${nodeInc}`,
              `-I${napiInc}`,
              `-I${cudaHome}/include`,
              '-c',
              glue,
              '-o',
              glueObj,
            ]).then((r) => ({ ...r, f: g })),
          { cost: statSync(glue).size },
        ),
      );
    }
  }
  // Longest first (nvcc, larger files), so the last jobs to finish are short ones.
  tasks.sort((a, b) => b.cost - a.cost);
  const cores = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;
  const { jobs, nvccThreads } = compileParallelism({ cores, tasks: tasks.length, targets, jobsEnv: process.env.TOKENMILL_CUDA_JOBS });
  if (tasks.length > 0)
    console.log(
      `[build-cuda] compiling ${tasks.length} files, ${Math.min(jobs, tasks.length)} at once` +
        `${nvccThreads > 1 ? `, nvcc --threads ${nvccThreads}` : ''} (${cores} cores)`,
    );
  const t0 = Date.now();
  const results = await pool(
    tasks.map((t) => () => t(nvccThreads)),
    jobs,
  );
  const failed = results.filter((r) => r.code !== 0);
  for (const r of results) if (r.out.trim()) console.log(`[build-cuda] ${r.f}:\n${r.out.trim()}`);
  if (failed.length > 0) return { ok: false, reason: `compile failed: ${failed.map((r) => r.f).join(', ')}` };
  const libDirs = [join(cudaHome, 'lib64'), join(cudaHome, 'lib'), join(cudaHome, 'targets', 'x86_64-linux', 'lib')].filter(existsSync);
  const link = await run('g++', [
    '-shared',
    '-o',
    ADDON,
    ...objs,
    ...libDirs.map((d) => `-L${d}`),
    '-lcudart_static',
    '-ldl',
    '-lrt',
    '-lpthread',
  ]);
  if (link.code !== 0) return { ok: false, reason: `link failed:\n${link.out}` };
  return { ok: true, reason: `built ${ADDON} for sm_${archs.join(',sm_')} in ${((Date.now() - t0) / 1000).toFixed(1)} s` };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await buildCuda().catch((e) => ({ ok: false, reason: String(e?.stack ?? e) }));
  if (r.ok) console.log(`[build-cuda] ${r.reason}`);
  else console.warn(`[build-cuda] WARNING: CUDA addon not built: ${r.reason} (tokenmill runs on CPU)`);
  process.exit(!r.ok && strict ? 1 : 0);
}
