// `serve --model org/name`: fetch a model's files from a Hugging Face-style hub
// ({hub}/{org}/{name}/resolve/main/{file}) into the cache (TOKENMILL_CACHE or ~/.cache/tokenmill),
// resuming interrupted downloads with HTTP Range from a .part file, with a cli-progress bar on TTYs.
// Owned by the server engineer (serve). Never logs the HF token.

import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';

export const DEFAULT_HUB_URL = 'https://huggingface.co';
const REPO_RE = /^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/;

export interface HubDownloadOptions {
  readonly repoId: string;
  readonly cacheDir?: string;
  readonly hubUrl?: string;
  /** Bearer token for gated models (default: HF_TOKEN). */
  readonly token?: string;
  readonly revision?: string;
  /** Show a progress bar (default: stderr is a TTY). */
  readonly progress?: boolean;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TOKENMILL_CACHE && env.TOKENMILL_CACHE.length > 0 ? env.TOKENMILL_CACHE : join(homedir(), '.cache', 'tokenmill');
}

export function isHubRepoId(s: string): boolean {
  return REPO_RE.test(s) && !s.includes('..') && !existsSync(s);
}

export function hubModelDir(cacheDir: string, repoId: string): string {
  const [org, name] = repoId.split('/') as [string, string];
  return join(cacheDir, 'hub', org, name);
}

/** Download (or reuse) every file a model needs; returns the local directory. */
export async function downloadHubModel(o: HubDownloadOptions): Promise<string> {
  if (!REPO_RE.test(o.repoId) || o.repoId.includes('..')) {
    throw new TokenmillError('invalid_argument', `'${o.repoId}' is not a hub model id (expected org/name)`);
  }
  const dir = hubModelDir(o.cacheDir ?? defaultCacheDir(), o.repoId);
  mkdirSync(dir, { recursive: true });
  const base =
    `${(o.hubUrl ?? process.env.TOKENMILL_HUB_URL ?? DEFAULT_HUB_URL).replace(/\/+$/, '')}/${o.repoId}/resolve/` +
    `${o.revision ?? 'main'}/`;
  const fetcher = new FileFetcher(base, dir, o.token ?? process.env.HF_TOKEN, o.progress ?? process.stderr.isTTY === true);
  await fetcher.get('config.json', true);
  await fetcher.get('generation_config.json', false);
  await fetcher.get('tokenizer.json', true);
  await fetcher.get('tokenizer_config.json', false);
  if (await fetcher.get('model.safetensors.index.json', false)) {
    for (const shard of shardNames(join(dir, 'model.safetensors.index.json'))) await fetcher.get(shard, true);
  } else {
    await fetcher.get('model.safetensors', true);
  }
  return dir;
}

function shardNames(indexPath: string): string[] {
  let map: unknown;
  try {
    map = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new TokenmillError('hub_download_failed', `${indexPath} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof map !== 'object' || map === null) throw new TokenmillError('hub_download_failed', `${indexPath} has no weight_map`);
  const names = [...new Set(Object.values(map as Record<string, unknown>).map(String))];
  for (const n of names) {
    if (!/^[\w.-]+\.safetensors$/.test(n)) throw new TokenmillError('hub_download_failed', `${indexPath}: refusing shard name '${n}'`);
  }
  return names;
}

class FileFetcher {
  constructor(
    private readonly base: string,
    private readonly dir: string,
    private readonly token: string | undefined,
    private readonly progress: boolean,
  ) {}

  /** Fetch one file unless already complete. Returns false for an optional file the hub lacks. */
  async get(file: string, required: boolean): Promise<boolean> {
    const dest = join(this.dir, file);
    if (existsSync(dest)) return true;
    const part = `${dest}.part`;
    const have = existsSync(part) ? statSync(part).size : 0;
    const headers: Record<string, string> = {};
    if (have > 0) headers.range = `bytes=${have}-`;
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const url = this.base + file;
    let res: Response;
    try {
      res = await fetch(url, { headers, redirect: 'follow' });
    } catch (e) {
      throw new TokenmillError('hub_download_failed', `cannot reach ${url}: ${(e as Error).message}`, { cause: e });
    }
    if (res.status === 404) {
      await res.body?.cancel();
      if (required) throw new TokenmillError('hub_download_failed', `${url}: 404 not found (is the model id right, and is it public?)`);
      return false;
    }
    if (res.status === 416 && have > 0) {
      // The .part already holds the whole file.
      await res.body?.cancel();
      renameSync(part, dest);
      return true;
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      const hint = res.status === 401 || res.status === 403 ? ' (gated model? set HF_TOKEN)' : '';
      throw new TokenmillError('hub_download_failed', `${url}: HTTP ${res.status}${hint}`);
    }
    const resumed = res.status === 206;
    if (resumed) log.info(`resuming ${file} at ${have} bytes`);
    const start = resumed ? have : 0;
    const total = totalSize(res, start);
    await this.write(res, part, start, total, file);
    const size = statSync(part).size;
    if (total !== null && size !== total) {
      throw new TokenmillError('hub_download_failed', `${file}: got ${size} of ${total} bytes; run again to resume`);
    }
    renameSync(part, dest);
    return true;
  }

  private async write(res: Response, part: string, start: number, total: number | null, file: string): Promise<void> {
    if (start === 0) rmSync(part, { force: true });
    const bar =
      this.progress && total !== null
        ? new cliProgress.SingleBar(
            { format: `${file} [{bar}] {percentage}% {value}/{total} bytes`, stream: process.stderr },
            cliProgress.Presets.shades_classic,
          )
        : null;
    bar?.start(total ?? 0, start);
    if (!bar) log.info(`downloading ${file}${total !== null ? ` (${total} bytes)` : ''}`);
    let done = start;
    // Each chunk is on disk before the next is read, so an interruption keeps everything received.
    const fh = await open(part, 'a');
    try {
      if (!res.body) throw new Error('empty response body');
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        await fh.write(chunk);
        done += chunk.length;
        bar?.update(done);
      }
    } catch (e) {
      throw new TokenmillError(
        'hub_download_failed',
        `${file}: download interrupted at ${done} bytes (${(e as Error).message}); run again to resume`,
        { cause: e },
      );
    } finally {
      await fh.close();
      bar?.stop();
    }
  }
}

function totalSize(res: Response, start: number): number | null {
  const cr = res.headers.get('content-range');
  const m = cr ? /\/(\d+)\s*$/.exec(cr) : null;
  if (m) return Number(m[1]);
  const len = res.headers.get('content-length');
  return len !== null && /^\d+$/.test(len) ? start + Number(len) : null;
}
