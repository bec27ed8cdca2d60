#!/usr/bin/env node
// Builds the native addons during `npm ci` / `npm run install`: the CPU addon always (node-gyp,
// offline: Node headers come from nodedir), then the CUDA addon only where scripts/build-cuda.mjs
// exists and nvcc is found; a CUDA failure only warns. Usage: node scripts/build-native.mjs [--rebuild]
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function nodeGypCommand() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] })];
  } catch {
    const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(bundled)) return [process.execPath, bundled];
  }
  return null;
}

function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [`--nodedir=${process.env.npm_config_nodedir}`];
  // Outside npm: use the headers installed next to this node binary, so nothing is downloaded.
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return [`--nodedir=${prefix}`];
  return [];
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  return r.status ?? 1;
}

function buildCpu() {
  const gyp = nodeGypCommand();
  if (gyp === null) {
    console.error('build-native: node-gyp not found (npm bundles it; it is also a devDependency)');
    return 1;
  }
  const jobs = ['--jobs', 'max'];
  const rebuild = process.argv.includes('--rebuild') || !existsSync(join(root, 'build', 'Makefile'));
  const t0 = Date.now();
  let status = rebuild
    ? run(gyp[0], [gyp[1], 'rebuild', '--release', ...jobs, ...nodedirArgs()])
    : run(gyp[0], [gyp[1], 'build', '--release', ...jobs, ...nodedirArgs()]);
  if (status !== 0 && !rebuild) status = run(gyp[0], [gyp[1], 'rebuild', '--release', ...jobs, ...nodedirArgs()]);
  if (status === 0) console.log(`build-native: CPU addon built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return status;
}

function findNvcc() {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'nvcc'))) return join(dir, 'nvcc');
  }
  let entries = [];
  try {
    entries = readdirSync('/usr/local');
  } catch {
    /* none */
  }
  for (const e of entries
    .filter((x) => x.startsWith('cuda'))
    .sort()
    .reverse()) {
    const p = join('/usr/local', e, 'bin', 'nvcc');
    if (existsSync(p)) return p;
  }
  return null;
}

function buildCuda() {
  const script = join(root, 'scripts', 'build-cuda.mjs');
  if (!existsSync(script)) return;
  const nvcc = findNvcc();
  if (nvcc === null) {
    console.log('build-native: nvcc not found; skipping the CUDA addon (the CPU backend works without it)');
    return;
  }
  const status = run(process.execPath, [script, `--nvcc=${nvcc}`]);
  if (status !== 0) console.warn(`build-native: WARNING: the CUDA addon failed to build (exit ${status}); continuing without it`);
}

const cpuStatus = buildCpu();
if (cpuStatus !== 0) {
  console.error('build-native: the CPU addon failed to build');
  process.exit(cpuStatus);
}
buildCuda();
