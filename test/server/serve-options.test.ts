// serve's option parsers: sizes with units for --kv-cache-memory / --max-body-bytes and the
// --rate-limit RPS[:BURST] form; bad values are invalid_argument, never NaN.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBytes, parseRateLimit } from '../../src/cli/serve.js';
import { TokenmillError } from '../../src/util/errors.js';

describe('serve option parsers', () => {
  it('parses sizes', () => {
    assert.equal(parseBytes('4096'), 4096);
    assert.equal(parseBytes('512MiB'), 512 * 1024 * 1024);
    assert.equal(parseBytes('2GB'), 2e9);
    assert.equal(parseBytes('1.5 GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseBytes('1e9'), 1e9);
    assert.equal(parseBytes('64k'), 65536);
    for (const bad of ['', 'x', '12 parsecs', '-5', '0']) {
      assert.throws(
        () => parseBytes(bad),
        (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument',
        bad,
      );
    }
  });

  it('parses rate limits', () => {
    assert.deepEqual(parseRateLimit('5'), { ratePerSecond: 5, burst: 5 });
    assert.deepEqual(parseRateLimit('0.5:3'), { ratePerSecond: 0.5, burst: 3 });
    assert.deepEqual(parseRateLimit('0.2'), { ratePerSecond: 0.2, burst: 1 });
    for (const bad of ['0', 'x', '1:0', '1:2.5']) assert.throws(() => parseRateLimit(bad), TokenmillError, bad);
  });
});
