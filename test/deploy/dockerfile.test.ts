// Structure lint of the Dockerfile and .dockerignore (hadolint is not available offline; run it
// where it is): known instructions, pinned FROM tags, a CUDA devel build stage and a CUDA runtime
// final stage, HEALTHCHECK script, the entry point script (deploy/docker, tested in entrypoint.test.ts), no ADD of URLs, a
// non-root USER, EXPOSE 8000, COPY sources present and not excluded by .dockerignore.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PINNED_NODE_VERSIONS } from '../../scripts/smoke-node.mjs';
import { REPO_ROOT } from '../e2e/cli-helpers.js';

const KNOWN = new Set([
  'FROM',
  'RUN',
  'CMD',
  'LABEL',
  'EXPOSE',
  'ENV',
  'ADD',
  'COPY',
  'ENTRYPOINT',
  'VOLUME',
  'USER',
  'WORKDIR',
  'ARG',
  'ONBUILD',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
]);

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}
interface Stage {
  readonly image: string;
  readonly name: string | null;
  readonly body: Instruction[];
}

/** Instructions with `\` continuations joined and comments dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, k) => {
    const line = raw.trim();
    if (buf === '' && (line === '' || line.startsWith('#'))) return;
    if (buf !== '' && line.startsWith('#')) return; // comment lines inside a continuation
    if (buf === '') start = k + 1;
    if (line.endsWith('\\')) {
      buf += line.slice(0, -1) + ' ';
      return;
    }
    buf += line;
    const m = /^(\S+)\s*(.*)$/s.exec(buf)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  });
  assert.equal(buf, '', 'the Dockerfile ends inside a line continuation');
  return out;
}

function stages(ins: Instruction[]): Stage[] {
  const out: Stage[] = [];
  for (const i of ins) {
    if (i.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
      assert.ok(m, `line ${i.line}: cannot parse FROM ${i.args}`);
      out.push({ image: m[1]!, name: m[2] ?? null, body: [] });
    } else {
      assert.ok(out.length > 0 || i.op === 'ARG', `line ${i.line}: ${i.op} before the first FROM`);
      out[out.length - 1]?.body.push(i);
    }
  }
  return out;
}

/** exec form (JSON array) -> its words; shell form -> split on spaces. */
function words(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
}

const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const ins = parseDockerfile(dockerfile);
const st = stages(ins);
const final = st[st.length - 1]!;

describe('Dockerfile', () => {
  it('uses only known instructions, exec-form JSON is valid, and no ADD fetches a URL', () => {
    for (const i of ins) {
      assert.ok(KNOWN.has(i.op), `line ${i.line}: unknown instruction ${i.op}`);
      if (['CMD', 'ENTRYPOINT', 'SHELL'].includes(i.op) || (i.op === 'HEALTHCHECK' && i.args.includes('CMD ['))) {
        const json = i.op === 'HEALTHCHECK' ? i.args.slice(i.args.indexOf('CMD ') + 4) : i.args;
        assert.doesNotThrow(() => JSON.parse(json), `line ${i.line}: ${i.op} must use a valid exec-form JSON array`);
      }
      if (i.op === 'ADD')
        assert.doesNotMatch(i.args, /https?:\/\/|git@/, `line ${i.line}: ADD of a URL (fetch in RUN with a checksum instead)`);
    }
  });

  it('every FROM is pinned to an explicit tag (not latest) or names an earlier stage', () => {
    const names = new Set<string>();
    for (const s of st) {
      if (!names.has(s.image)) {
        const tag = /^[^@]+:([^:/@]+)$/.exec(s.image)?.[1];
        assert.ok(tag !== undefined || s.image.includes('@sha256:'), `FROM ${s.image} has no tag`);
        assert.notEqual(tag, 'latest', `FROM ${s.image} uses :latest`);
      }
      if (s.name !== null) names.add(s.name);
    }
  });

  it('builds the CUDA addon in a devel stage and runs on a CUDA runtime image with the Node 22 that CI smokes', () => {
    const build = st.find((s) => /^nvidia\/cuda:[\d.]+-devel-ubuntu/.test(s.image));
    assert.ok(build, 'a nvidia/cuda:*-devel-ubuntu* build stage (nvcc)');
    assert.ok(
      build.body.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args) && i.args.includes('tokenmill_cuda.node')),
      'npm ci, then a check that the CUDA addon was built',
    );
    assert.match(final.image, /^nvidia\/cuda:[\d.]+-runtime-ubuntu/);
    const node22 = PINNED_NODE_VERSIONS.find((v) => v.startsWith('22.'));
    assert.ok(
      st.some((s) => s.image === `node:${node22}-bookworm-slim`),
      `Node from the pinned node:${node22} image (the 22.x scripts/smoke-node.mjs tests)`,
    );
    for (const i of ins.filter((x) => x.op === 'COPY' && x.args.startsWith('--from='))) {
      const from = /^--from=(\S+)/.exec(i.args)![1]!;
      assert.ok(
        st.some((s) => s.name === from),
        `line ${i.line}: COPY --from=${from} names no stage`,
      );
    }
    assert.ok(
      final.body.some((i) => i.op === 'COPY' && i.args.includes('tokenmill_cuda.node')),
      'the built addon is copied into the runtime image',
    );
  });

  it('final stage: non-root USER, EXPOSE 8000, HEALTHCHECK script, entry point that always binds TOKENMILL_HOST:TOKENMILL_PORT', () => {
    const users = final.body.filter((i) => i.op === 'USER');
    assert.ok(users.length > 0, 'USER set in the final stage');
    assert.doesNotMatch(users[users.length - 1]!.args, /^(root|0)(:|$)/);
    assert.ok(final.body.some((i) => i.op === 'EXPOSE' && words(i.args).includes('8000')));
    const env = final.body
      .filter((i) => i.op === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /\bTOKENMILL_HOST=0\.0\.0\.0\b/, 'binds all interfaces inside the container');
    assert.match(env, /\bTOKENMILL_PORT=8000\b/, 'the port EXPOSE names');
    assert.match(env, /TOKENMILL_GIT_COMMIT/, 'the commit reaches the environment fingerprint');
    const hc = final.body.filter((i) => i.op === 'HEALTHCHECK');
    assert.equal(hc.length, 1);
    const hcArgv = JSON.parse(hc[0]!.args.slice(hc[0]!.args.indexOf('CMD ') + 4)) as string[];
    assert.deepEqual(hcArgv, ['node', '/app/deploy/docker/healthcheck.mjs'], 'the health check script (tested in entrypoint.test.ts)');
    const entry = final.body.filter((i) => i.op === 'ENTRYPOINT').at(-1);
    assert.ok(entry, 'an ENTRYPOINT');
    assert.deepEqual(words(entry.args), ['/bin/sh', '/app/deploy/docker/entrypoint.sh']);
    // No CMD with --host/--port: user arguments replace CMD, which is how the bind address got lost.
    const cmd = final.body.filter((i) => i.op === 'CMD').at(-1);
    assert.ok(cmd === undefined || !/--host|--port/.test(cmd.args), 'host and port do not live in CMD');
    const copied = final.body
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))
      .map((i) => i.args)
      .join(' ');
    for (const f of ['deploy/docker/entrypoint.sh', 'deploy/docker/healthcheck.mjs'])
      assert.ok(copied.includes(f), `${f} is copied into the image`);
    assert.match(
      readFileSync(join(REPO_ROOT, 'deploy', 'docker', 'entrypoint.sh'), 'utf8'),
      /exec "\$bin" serve --host "\$host" --port "\$port" "\$@"/,
    );
  });

  it('COPY sources exist in the repository and .dockerignore does not exclude them', () => {
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const p of ['node_modules', 'build', 'dist', '.git']) assert.ok(ignored.includes(p), `.dockerignore excludes ${p}`);
    for (const i of ins.filter((x) => x.op === 'COPY' && !x.args.startsWith('--from='))) {
      const parts = words(i.args).filter((w) => !w.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(join(REPO_ROOT, src)), `line ${i.line}: COPY source ${src} does not exist`);
        const path = src.replace(/\/$/, '');
        assert.ok(
          !ignored.some((p) => path === p || path.startsWith(`${p}/`)),
          `line ${i.line}: COPY source ${src} is excluded by .dockerignore`,
        );
      }
    }
  });
});
