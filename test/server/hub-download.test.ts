// Hub downloads against a local HTTP server laid out like huggingface.co
// (/{org}/{name}/resolve/main/{file}): single file and sharded checkpoints, optional files missing,
// and an interrupted download resuming with an HTTP Range request.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { downloadHubModel, hubModelDir } from '../../src/cli/hub-download.js';
import { TokenmillError } from '../../src/util/errors.js';

interface Hub {
  url: string;
  files: Map<string, Buffer>;
  requests: { path: string; range: string | undefined }[];
  /** Path -> bytes after which the next response for it is cut (once). */
  cuts: Map<string, number>;
  server: Server;
}

async function startHub(): Promise<Hub> {
  const hub = { files: new Map<string, Buffer>(), requests: [], cuts: new Map<string, number>() } as unknown as Hub;
  hub.server = createServer((req, res) => {
    const path = decodeURIComponent(req.url ?? '');
    hub.requests.push({ path, range: req.headers.range });
    const body = hub.files.get(path);
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    const cut = hub.cuts.get(path);
    if (cut !== undefined) {
      hub.cuts.delete(path);
      // Half the file, then a clean FIN (not a reset, which could discard bytes in flight).
      res.write(body.subarray(start, cut), () => res.socket?.end());
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => hub.server.listen(0, '127.0.0.1', r));
  const addr = hub.server.address() as { port: number };
  hub.url = `http://127.0.0.1:${addr.port}`;
  return hub;
}

describe('hub download', () => {
  let hub: Hub;
  const cache = mkdtempSync(join(tmpdir(), 'tm-hub-'));
  const weights = randomBytes(300_000);
  before(async () => {
    hub = await startHub();
    const put = (repo: string, file: string, data: Buffer | string) => hub.files.set(`/${repo}/resolve/main/${file}`, Buffer.from(data));
    put('acme/tiny', 'config.json', '{"a":1}');
    put('acme/tiny', 'tokenizer.json', '{"t":1}');
    put('acme/tiny', 'tokenizer_config.json', '{}');
    put('acme/tiny', 'model.safetensors', weights);
    put('acme/sharded', 'config.json', '{}');
    put('acme/sharded', 'tokenizer.json', '{}');
    put('acme/sharded', 'generation_config.json', '{}');
    put(
      'acme/sharded',
      'model.safetensors.index.json',
      JSON.stringify({
        weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' },
      }),
    );
    put('acme/sharded', 'model-00001-of-00002.safetensors', 'shard-one');
    put('acme/sharded', 'model-00002-of-00002.safetensors', 'shard-two');
  });
  after(() => {
    hub.server.close();
    rmSync(cache, { recursive: true, force: true });
  });

  it('resumes an interrupted download with a Range request', async () => {
    hub.cuts.set('/acme/tiny/resolve/main/model.safetensors', 100_000);
    await assert.rejects(
      downloadHubModel({ repoId: 'acme/tiny', cacheDir: cache, hubUrl: hub.url, progress: false }),
      (e: unknown) => e instanceof TokenmillError && e.code === 'hub_download_failed' && /run again to resume/.test(e.message),
    );
    const dir = hubModelDir(cache, 'acme/tiny');
    assert.equal(existsSync(join(dir, 'model.safetensors')), false);
    const partial = statSync(join(dir, 'model.safetensors.part')).size;
    assert.ok(partial > 0 && partial <= 100_000, `partial ${partial}`);
    hub.requests.length = 0;
    const got = await downloadHubModel({ repoId: 'acme/tiny', cacheDir: cache, hubUrl: hub.url, progress: false });
    assert.equal(got, dir);
    assert.deepEqual(readFileSync(join(dir, 'model.safetensors')), weights);
    assert.equal(existsSync(join(dir, 'model.safetensors.part')), false);
    const w = hub.requests.find((r) => r.path.endsWith('/model.safetensors'));
    assert.equal(w?.range, `bytes=${partial}-`);
    // Complete files are not fetched again.
    assert.equal(
      hub.requests.some((r) => r.path.endsWith('/config.json')),
      false,
    );
    assert.equal(readFileSync(join(dir, 'config.json'), 'utf8'), '{"a":1}');
  });

  it('downloads an index and its shards; optional files may be missing', async () => {
    const dir = await downloadHubModel({ repoId: 'acme/sharded', cacheDir: cache, hubUrl: hub.url, progress: false });
    assert.equal(readFileSync(join(dir, 'model-00002-of-00002.safetensors'), 'utf8'), 'shard-two');
    assert.equal(readFileSync(join(dir, 'model-00001-of-00002.safetensors'), 'utf8'), 'shard-one');
    assert.equal(existsSync(join(dir, 'tokenizer_config.json')), false);
  });

  it('a missing required file or a bad id is a clear error', async () => {
    await assert.rejects(
      downloadHubModel({ repoId: 'acme/nothing', cacheDir: cache, hubUrl: hub.url, progress: false }),
      (e: unknown) => e instanceof TokenmillError && e.code === 'hub_download_failed' && /404/.test(e.message),
    );
    await assert.rejects(
      downloadHubModel({ repoId: '../etc', cacheDir: cache, hubUrl: hub.url }),
      (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument',
    );
  });
});
