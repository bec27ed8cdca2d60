// AdmissionControl, the one place that bounds waiting work: the default count bound is sized from
// max-num-seqs, the wait bound uses the finish rate measured over busy engine time (idle time never
// dilutes it), Retry-After comes from the same estimate, and explicit bounds replace the defaults.
// Steps are recorded by hand (what AsyncEngine reports after each step), so no timing is involved.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdmissionControl } from '../../src/engine/admission.js';
import { ENGINE_DEFAULTS } from '../../src/engine/engine-defaults.js';
import { TokenmillError } from '../../src/util/errors.js';

function overloaded(f: () => void): TokenmillError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof TokenmillError && e.code === 'server_overloaded', String(e));
    return e;
  }
  assert.fail('admitted');
}

/** `seconds` of busy steps of 10 ms, finishing `perSecond` requests a second. */
function busy(a: AdmissionControl, seconds: number, perSecond: number): void {
  for (let i = 0; i < seconds * 100; i++) a.recordStep(0.01, i % Math.round(100 / perSecond) === 0 ? 1 : 0);
}

test('default bounds: max(64, 2 x maxNumSeqs) waiting and a 20 s wait; an explicit --max-queue alone drops the wait bound', () => {
  assert.equal(new AdmissionControl({ maxNumSeqs: 8 }).maxWaiting, ENGINE_DEFAULTS.minMaxWaitingRequests);
  assert.equal(new AdmissionControl({ maxNumSeqs: 256 }).maxWaiting, 512);
  assert.equal(new AdmissionControl({ maxNumSeqs: 8 }).maxWaitSeconds, ENGINE_DEFAULTS.maxQueueWaitSeconds);
  assert.equal(new AdmissionControl({ maxNumSeqs: 8, maxWaitingRequests: 5 }).maxWaitSeconds, 0);
  assert.equal(new AdmissionControl({ maxNumSeqs: 8, maxWaitingRequests: 5, maxQueueWaitSeconds: 3 }).maxWaitSeconds, 3);
  assert.throws(() => new AdmissionControl({ maxNumSeqs: 8, maxWaitingRequests: 0 }), { code: 'invalid_argument' });
  assert.throws(() => new AdmissionControl({ maxNumSeqs: 8, maxQueueWaitSeconds: -1 }), { code: 'invalid_argument' });
});

test('count bound: the limit is admitted, one more is 503; Retry-After 1 s while the rate is unknown', () => {
  const a = new AdmissionControl({ maxNumSeqs: 4, maxWaitingRequests: 3 });
  a.check(2); // the third waiting request is admitted
  const e = overloaded(() => a.check(3));
  assert.equal(e.details.retryAfterSeconds, 1);
  assert.match(e.message, /3 requests are waiting \(the bound is 3\)/);
  assert.equal(e.httpStatus, 503);
});

test('wait bound: sheds when (waiting + 1) / rate exceeds it; Retry-After is the time for the excess to drain', () => {
  const a = new AdmissionControl({ maxNumSeqs: 4, maxQueueWaitSeconds: 10 });
  a.check(10); // rate unknown: only the count bound holds
  busy(a, 20, 2); // 2 requests/s
  assert.ok(Math.abs(a.finishRate()! - 2) < 0.05, String(a.finishRate()));
  a.check(0); // nobody waiting: always admitted
  a.check(18); // 19 / 2 = 9.5 s
  a.check(22, 0); // 4 free slots take 4 of the 22: 19 / 2 = 9.5 s
  overloaded(() => a.check(22)); // all slots busy: 23 / 2 = 11.5 s

  const e = overloaded(() => a.check(30)); // 31 / 2 = 15.5 s > 10 s; 11 excess at 2/s = 6 s
  assert.equal(e.details.retryAfterSeconds, 6);
  assert.match(e.message, /30 requests are waiting, about 16 s at [12]\.\d\d requests\/s \(the bound is 10 s\)/);
  // Count bound with a known rate: Retry-After is the time for the queue to fall under it.
  const c = new AdmissionControl({ maxNumSeqs: 4, maxWaitingRequests: 10 });
  busy(c, 20, 2);
  assert.equal(overloaded(() => c.check(14)).details.retryAfterSeconds, 3); // 5 over at ~2/s
});

test('the rate follows the recent load (busy time only) and Retry-After stays within 60 s', () => {
  const a = new AdmissionControl({ maxNumSeqs: 4, maxQueueWaitSeconds: 5 });
  busy(a, 30, 10);
  busy(a, 60, 1); // six time constants later the old rate has faded
  assert.ok(a.finishRate()! < 1.1 && a.finishRate()! > 0.9, String(a.finishRate()));
  a.recordStep(0, 5); // a zero-length step changes nothing
  const ra = overloaded(() => a.check(63)).details.retryAfterSeconds as number; // (64 - 5 x 1) / 1
  assert.ok(ra >= 55 && ra <= 60, String(ra));
  const slow = new AdmissionControl({ maxNumSeqs: 4, maxWaitingRequests: 1000, maxQueueWaitSeconds: 1 });
  busy(slow, 30, 0.2);
  assert.equal(overloaded(() => slow.check(900)).details.retryAfterSeconds, 60);
});
