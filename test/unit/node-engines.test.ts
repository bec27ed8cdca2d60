// Node 20, 22 and 24 install without engine warnings: package.json `engines` admits them, every
// package in package-lock.json admits the Node 22 and 24 versions CI smokes (scripts/smoke-node.mjs
// runs `npm ci --dry-run` under them, in .ci/run), and every package, dev ones included, admits Node 20
// (cookie through fastify's light-my-request is pinned to 1.x by `overrides` for that: cookie 2
// wants Node 22; the client-test packages are pinned to their last Node-20 lines: ai 6,
// @ai-sdk/openai-compatible 2, @langchain/openai 1.5.8 on openai 6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PINNED_NODE_VERSIONS } from '../../scripts/smoke-node.mjs';

const ROOT = join(import.meta.dirname, '..', '..');
const semver = createRequire(import.meta.url)('semver') as {
  satisfies(v: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
};
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  overrides?: Record<string, unknown>;
};
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; dev?: boolean; engines?: { node?: string } | string[] }>;
};

const NODE_20 = semver.minVersion(pkg.engines.node)!.version;
const nameOf = (path: string): string => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
const withEngines = Object.entries(lock.packages).flatMap(([path, p]) => {
  const range = !Array.isArray(p.engines) ? p.engines?.node : undefined;
  return path !== '' && range !== undefined ? [{ path, name: nameOf(path), version: p.version, dev: p.dev === true, range }] : [];
});

test('package.json engines admits Node 20, 22 and 24 (the smoked versions)', () => {
  assert.equal(NODE_20.split('.')[0], '20', `engines.node ${pkg.engines.node} starts at Node 20`);
  assert.equal(PINNED_NODE_VERSIONS.length, 2);
  assert.deepEqual(
    PINNED_NODE_VERSIONS.map((v) => v.split('.')[0]),
    ['22', '24'],
  );
  for (const v of [NODE_20, ...PINNED_NODE_VERSIONS])
    assert.ok(semver.satisfies(v, pkg.engines.node), `${v} satisfies ${pkg.engines.node}`);
});

test('every locked package admits the smoked Node 22 and 24', () => {
  assert.ok(withEngines.length > 10);
  for (const v of PINNED_NODE_VERSIONS) {
    const bad = withEngines.filter((p) => !semver.satisfies(v, p.range)).map((p) => `${p.path}@${p.version} (${p.range})`);
    assert.deepEqual(bad, [], `packages whose engines exclude Node ${v}`);
  }
});

test('every production package admits Node 20 (cookie pinned to 1.x through overrides)', () => {
  const bad = withEngines.filter((p) => !p.dev && !semver.satisfies(NODE_20, p.range)).map((p) => `${p.path}@${p.version} (${p.range})`);
  assert.deepEqual(bad, [], `production packages whose engines exclude Node ${NODE_20}`);
  assert.deepEqual(pkg.overrides, { 'light-my-request': { cookie: '1.1.1' } });
  assert.deepEqual(
    withEngines.filter((p) => p.name === 'cookie').map((p) => p.version),
    ['1.1.1'],
  );
});

test('every dev package admits Node 20 too, so `npm ci` on Node 20 prints no engine warning', () => {
  // node-gyp 12 and its helpers want ^20.17: a development checkout needs a maintained Node 20 line.
  const bad = withEngines.filter((p) => p.dev && !semver.satisfies('20.19.0', p.range)).map((p) => `${p.path}@${p.version} (${p.range})`);
  assert.deepEqual(bad, [], 'dev packages whose engines exclude Node 20.19: pin a Node-20 line or drop Node 20 from engines');
});
