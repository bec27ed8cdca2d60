// API keys: loaded from a comma-separated list (serve reads TOKENMILL_API_KEYS) or a key file that only its owner can
// read (never argv), stored as sha256 digests and compared with timingSafeEqual against every key.
// Logs and metrics name a key only by a short id ending in its last 4 characters.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { TokenmillError } from '../util/errors.js';

interface StoredKey {
  readonly digest: Buffer;
  /** Safe to log and to use as a metrics label: 'k<index>-<last 4 chars>'. */
  readonly id: string;
}

export const ANONYMOUS_ACCOUNT = 'anonymous';

export class ApiKeyStore {
  private readonly keys: StoredKey[];

  constructor(rawKeys: readonly string[]) {
    const cleaned = [...new Set(rawKeys.map((k) => k.trim()).filter((k) => k.length > 0))];
    for (const k of cleaned) {
      if (k.length < 8)
        throw new TokenmillError('invalid_argument', `An API key is too short (${k.length} characters; at least 8 needed).`);
    }
    this.keys = cleaned.map((k, i) => ({ digest: sha256(k), id: `k${i + 1}-${k.slice(-4)}` }));
  }

  /** Auth is on only when at least one key is configured. */
  get enabled(): boolean {
    return this.keys.length > 0;
  }

  get size(): number {
    return this.keys.length;
  }

  /** The key's id when the presented key matches one; null otherwise. Constant-time per key. */
  verify(presented: string | null): string | null {
    if (!this.enabled) return ANONYMOUS_ACCOUNT;
    if (presented === null || presented.length === 0) return null;
    const d = sha256(presented);
    let found: string | null = null;
    for (const k of this.keys) {
      // Compare against every key (no early exit) so timing does not reveal which one matched.
      if (timingSafeEqual(d, k.digest) && found === null) found = k.id;
    }
    return found;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** The bearer token from an Authorization header (or null). */
export function bearerToken(header: string | string[] | undefined): string | null {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return null;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1]! : null;
}

/**
 * Read keys from a file: one per line, '#' comments and blank lines ignored. Refuses a file that
 * its group or others can read (like ssh does): chmod 600 it.
 */
export function readApiKeyFile(path: string): string[] {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (e) {
    throw new TokenmillError('file_not_found', `API key file not found: ${path}`, { cause: e });
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new TokenmillError(
      'invalid_argument',
      `API key file ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  const text = readFileSync(path, 'utf8');
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

/** Keys from the comma-separated list the CLI read from TOKENMILL_API_KEYS, plus an optional key file. */
export function loadApiKeys(opts: { keyList?: string; keyFile?: string }): ApiKeyStore {
  const fromEnv = (opts.keyList ?? '').split(',');
  const fromFile = opts.keyFile ? readApiKeyFile(opts.keyFile) : [];
  return new ApiKeyStore([...fromEnv, ...fromFile]);
}
