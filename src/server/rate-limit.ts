// Per-key token buckets: each request takes one token; a bucket refills at ratePerSecond up to
// burst. An empty bucket answers rate_limit_exceeded (429) with the seconds until the next token.

import { TokenmillError } from '../util/errors.js';

export interface RateLimitOptions {
  readonly ratePerSecond: number;
  readonly burst: number;
}

export class KeyRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(
    private readonly opts: RateLimitOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (!(opts.ratePerSecond > 0) || !(opts.burst >= 1)) {
      throw new TokenmillError(
        'invalid_argument',
        `rate limit needs ratePerSecond > 0 and burst >= 1 (got ${opts.ratePerSecond}, ${opts.burst})`,
      );
    }
  }

  /** Take one token for key or throw rate_limit_exceeded with details.retryAfterSeconds. */
  take(key: string): void {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.opts.burst, atMs: t };
    b.tokens = Math.min(this.opts.burst, b.tokens + ((t - b.atMs) / 1000) * this.opts.ratePerSecond);
    b.atMs = t;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    const retryAfterSeconds = (1 - b.tokens) / this.opts.ratePerSecond;
    throw new TokenmillError(
      'rate_limit_exceeded',
      `Rate limit exceeded for this API key (${this.opts.ratePerSecond} requests/s, burst ${this.opts.burst}); retry in ` +
        `${Math.ceil(retryAfterSeconds)} s.`,
      { details: { retryAfterSeconds } },
    );
  }
}
