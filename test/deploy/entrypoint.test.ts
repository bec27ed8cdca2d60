// The image's entry point and health check, run here as they run in the container (no Docker
// engine needed): deploy/docker/entrypoint.sh with a stub program that records its argv, then with
// the real `tokenmill serve`, and deploy/docker/healthcheck.mjs against a live server, a server on
// loopback only (the address clients reach is another interface) and a dead port.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { reachableAddress } from '../../deploy/docker/healthcheck.mjs';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { REPO_ROOT } from '../e2e/cli-helpers.js';

const ENTRYPOINT = join(REPO_ROOT, 'deploy', 'docker', 'entrypoint.sh');
const HEALTHCHECK = join(REPO_ROOT, 'deploy', 'docker', 'healthcheck.mjs');
let tmp = '';
let stub = '';

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tm-entrypoint-'));
  // The stub records its argv as JSON on stdout, one element per argument (spaces preserved).
  stub = join(tmp, 'tokenmill-stub');
  writeFileSync(stub, `#!${process.execPath}\nprocess.stdout.write(JSON.stringify(process.argv.slice(2)));\n`);
  chmodSync(stub, 0o755);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function entry(args: string[], env: Record<string, string> = {}): { code: number | null; argv: string[] | null; stderr: string } {
  const r = spawnSync('sh', [ENTRYPOINT, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', TOKENMILL_BIN: stub, ...env },
  });
  return { code: r.status, argv: r.status === 0 ? (JSON.parse(r.stdout) as string[]) : null, stderr: r.stderr };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function health(port: number, host?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolveP) => {
    // A generous wait: on a loaded test machine a live server may take seconds to answer.
    const env: NodeJS.ProcessEnv = { ...process.env, TOKENMILL_PORT: String(port), TOKENMILL_HEALTH_TIMEOUT_MS: '60000' };
    delete env.TOKENMILL_HEALTH_HOST;
    if (host !== undefined) env.TOKENMILL_HEALTH_HOST = host;
    const child = spawn(process.execPath, [HEALTHCHECK], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolveP({ code, out: out.trim() }));
  });
}

describe('deploy/docker/entrypoint.sh', () => {
  it('`docker run IMAGE --model X`: host and port from the environment survive user arguments', () => {
    assert.deepEqual(entry(['--model', '/models/x']).argv, ['serve', '--host', '0.0.0.0', '--port', '8000', '--model', '/models/x']);
    assert.deepEqual(entry([]).argv, ['serve', '--host', '0.0.0.0', '--port', '8000']);
    assert.deepEqual(entry(['serve', '--model', '/m']).argv, ['serve', '--host', '0.0.0.0', '--port', '8000', '--model', '/m']);
    assert.deepEqual(entry(['--model', '/m'], { TOKENMILL_PORT: '9000' }).argv, [
      'serve',
      '--host',
      '0.0.0.0',
      '--port',
      '9000',
      '--model',
      '/m',
    ]);
    assert.deepEqual(entry(['--served-model-name', 'my model', '--usd-per-hour', '2.99']).argv?.slice(5), [
      '--served-model-name',
      'my model',
      '--usd-per-hour',
      '2.99',
    ]);
  });

  it('a --host/--port that agrees with the environment is accepted; one that disagrees is refused, naming the env var', () => {
    assert.equal(entry(['--host', '0.0.0.0', '--port', '8000', '--model', '/m']).code, 0);
    assert.equal(entry(['--port=8000']).code, 0);
    for (const [args, re] of [
      [['--model', '/m', '--host', '127.0.0.1'], /--host 127\.0\.0\.1 disagrees with TOKENMILL_HOST=0\.0\.0\.0.*-e TOKENMILL_HOST=/],
      [['--port', '9001'], /--port 9001 disagrees with TOKENMILL_PORT=8000/],
      [['--port=9001'], /--port 9001 disagrees with TOKENMILL_PORT=8000/],
    ] as const) {
      const r = entry([...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, re);
    }
  });

  it('other subcommands pass through unchanged', () => {
    assert.deepEqual(entry(['doctor', '--json']).argv, ['doctor', '--json']);
    assert.deepEqual(entry(['--version']).argv, ['--version']);
    assert.deepEqual(entry(['generate', '--model', '/m', '--prompt', 'a b']).argv, ['generate', '--model', '/m', '--prompt', 'a b']);
  });
});

describe('deploy/docker/healthcheck.mjs', () => {
  it('asks the first non-internal IPv4 address (what -p forwards to), loopback only without one', () => {
    const ifaces = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
      eth0: [
        { address: 'fe80::1', family: 'IPv6', internal: false },
        { address: '172.17.0.2', family: 'IPv4', internal: false },
      ],
    };
    assert.equal(reachableAddress(ifaces), '172.17.0.2');
    assert.equal(reachableAddress({ lo: ifaces.lo }), '127.0.0.1');
    assert.equal(reachableAddress({}), '127.0.0.1');
  });

  it(
    'the real `tokenmill serve` started by the entry point: healthy ' + 'while it runs, unhealthy on loopback-only and after it stops',
    async () => {
      const model = join(tmp, 'model');
      writeRandomModel(model, MODEL_PRESETS['tiny-llama']!.config, { seed: 1 });
      const bin = join(tmp, 'tokenmill-dev');
      writeFileSync(bin, `#!/bin/sh\ncd '${REPO_ROOT}' && exec '${process.execPath}' --import tsx src/cli/main.ts "$@"\n`);
      chmodSync(bin, 0o755);
      const port = await freePort();
      // Tests bind loopback only, so TOKENMILL_HOST=127.0.0.1 here; the image's default is 0.0.0.0.
      const child: ChildProcess = spawn('sh', [ENTRYPOINT, '--model', model, '--device', 'reference'], {
        env: { ...process.env, TOKENMILL_BIN: bin, TOKENMILL_HOST: '127.0.0.1', TOKENMILL_PORT: String(port), TOKENMILL_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      const exited = new Promise<void>((r) => child.on('close', () => r()));
      try {
        await new Promise<void>((resolveP, reject) => {
          child.stdout!.on('data', (d) => {
            out += d;
            if (out.includes('listening on')) resolveP();
          });
          child.on('close', (code) => reject(new Error(`serve exited ${code} before listening:\n${out}\n${err}`)));
        });
        assert.match(out, new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`));
        const live = await health(port, '127.0.0.1');
        assert.equal(live.code, 0, live.out);
        assert.match(live.out, /^healthy: .*answered 200/);
        // The bug this guards: a server on the container's loopback is not reachable through -p.
        const outside = reachableAddress(networkInterfaces());
        if (outside !== '127.0.0.1') {
          const r = await health(port);
          assert.equal(r.code, 1, r.out);
          assert.match(r.out, new RegExp(`unhealthy: http://${outside.replace(/\./g, '\\.')}:${port}/health unreachable`));
        }
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
      const dead = await health(port, '127.0.0.1');
      assert.equal(dead.code, 1, dead.out);
      assert.match(dead.out, /unhealthy: .* unreachable \(ECONNREFUSED\)/);
    },
  );

  it('a non-200 /health is unhealthy', async () => {
    const { createServer: createHttp } = await import('node:http');
    const srv = createHttp((_req, res) => {
      res.statusCode = 503;
      res.end('{"status":"dead"}');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const r = await health((srv.address() as { port: number }).port, '127.0.0.1');
      assert.equal(r.code, 1);
      assert.match(r.out, /answered 503/);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

it('entrypoint.sh is executable and POSIX sh (no bashisms the image shell would reject)', () => {
  const text = readFileSync(ENTRYPOINT, 'utf8');
  assert.ok(text.startsWith('#!/bin/sh\n'));
  assert.doesNotMatch(text, /\[\[|\bfunction\b|\$\{[^}]*\/\/|local /);
  const r = spawnSync('sh', ['-n', ENTRYPOINT]);
  assert.equal(r.status, 0, String(r.stderr));
});
