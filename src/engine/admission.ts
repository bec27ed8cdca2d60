// Admission control: the one place that decides whether a new request may wait for the engine. Two
// bounds on the waiting work (requests admitted and not yet scheduled): a count (--max-queue;
// default sized from max-num-seqs) and an estimated wait (--max-queue-wait; the queue length over
// the measured rate at which the engine finishes requests), so that overload is answered at once
// with 503 + a Retry-After from the same estimate instead of a wait that ends in a client timeout.
// Never looks at a request's content; never sleeps.
import { TokenmillError } from '../util/errors.js';
import { ENGINE_DEFAULTS } from './engine-defaults.js';

export interface AdmissionOptions {
  /** Most requests waiting to be scheduled; default max(64, 2 x maxNumSeqs) (ENGINE_DEFAULTS). */
  readonly maxWaitingRequests?: number;
  /**
   * Most seconds a new request is expected to wait before its first step; 0 = no wait bound.
   * Default 20 s, or none when only maxWaitingRequests is given (the operator sized the queue).
   */
  readonly maxQueueWaitSeconds?: number;
}

/** The estimator's constants (the bounds' defaults are in ENGINE_DEFAULTS). */
const ESTIMATOR = Object.freeze({
  /** Time constant of the finish-rate average, in seconds of busy engine time. */
  rateTauSeconds: 10,
  /** Before this much busy time and this many finishes the rate is unknown (only the count bound holds). */
  minBusySeconds: 2,
  minFinished: 4,
  maxRetryAfterSeconds: 60,
});

export class AdmissionControl {
  readonly maxWaiting: number;
  private readonly maxNumSeqs: number;
  /** 0: no wait bound. */
  readonly maxWaitSeconds: number;
  /** Decayed finishes and decayed busy time (their ratio is the bias-corrected rate); raw totals gate it. */
  private decayedFinished = 0;
  private decayedBusy = 0;
  private busySeconds = 0;
  private numFinished = 0;

  constructor(o: AdmissionOptions & { readonly maxNumSeqs: number }) {
    const d = ENGINE_DEFAULTS;
    this.maxNumSeqs = o.maxNumSeqs;
    this.maxWaiting = o.maxWaitingRequests ?? Math.max(d.minMaxWaitingRequests, d.waitingRequestsPerSeq * o.maxNumSeqs);
    this.maxWaitSeconds = o.maxQueueWaitSeconds ?? (o.maxWaitingRequests !== undefined ? 0 : d.maxQueueWaitSeconds);
    if (!(Number.isSafeInteger(this.maxWaiting) && this.maxWaiting >= 1)) {
      throw new TokenmillError('invalid_argument', `max waiting requests must be a positive integer, got ${this.maxWaiting}`, {
        param: 'max-queue',
      });
    }
    if (!(this.maxWaitSeconds >= 0 && Number.isFinite(this.maxWaitSeconds))) {
      throw new TokenmillError('invalid_argument', `max queue wait must be a non-negative number of seconds, got ${this.maxWaitSeconds}`, {
        param: 'max-queue-wait',
      });
    }
  }

  /** One engine step: its wall time and how many requests it finished (idle time is never counted). */
  recordStep(wallSeconds: number, numFinished: number): void {
    if (!(wallSeconds > 0)) return;
    const keep = Math.exp(-wallSeconds / ESTIMATOR.rateTauSeconds);
    this.decayedFinished = this.decayedFinished * keep + numFinished;
    this.decayedBusy = this.decayedBusy * keep + wallSeconds;
    this.busySeconds += wallSeconds;
    this.numFinished += numFinished;
  }

  /** Requests the engine finishes per second of work, recently; null until measured. */
  finishRate(): number | null {
    const d = ESTIMATOR;
    if (this.busySeconds < d.minBusySeconds || this.numFinished < d.minFinished || this.decayedBusy <= 0) return null;
    return this.decayedFinished / this.decayedBusy;
  }

  /**
   * Throws server_overloaded (503) with details.retryAfterSeconds when one more request may not wait.
   * numRunning: requests in the running batch; the waiting ones that free slots will take are not
   * ahead of a new request in the wait estimate (they still count for the count bound).
   */
  check(numWaiting: number, numRunning = this.maxNumSeqs): void {
    const rate = this.finishRate();
    const retryAfter = (excess: number): number =>
      Math.min(ESTIMATOR.maxRetryAfterSeconds, Math.max(1, rate !== null && rate > 0 ? Math.ceil(excess / rate) : 1));
    if (numWaiting >= this.maxWaiting) {
      const s = retryAfter(numWaiting + 1 - this.maxWaiting);
      throw new TokenmillError(
        'server_overloaded',
        `The server is overloaded: ${numWaiting} requests are waiting (the bound is ${this.maxWaiting}); retry in ${s} s.`,
        {
          details: { retryAfterSeconds: s, numWaiting, maxWaiting: this.maxWaiting },
        },
      );
    }
    const ahead = numWaiting - Math.max(0, this.maxNumSeqs - numRunning);
    if (this.maxWaitSeconds > 0 && rate !== null && ahead > 0) {
      const waitS = rate > 0 ? (ahead + 1) / rate : Infinity;
      if (waitS > this.maxWaitSeconds) {
        const s = retryAfter(ahead + 1 - this.maxWaitSeconds * rate);
        throw new TokenmillError(
          'server_overloaded',
          `The server is overloaded: ${numWaiting} requests are waiting, ` +
            `about ${Number.isFinite(waitS) ? waitS.toFixed(0) : 'unbounded'} s at ` +
            `${rate.toFixed(2)} requests/s (the bound is ${this.maxWaitSeconds} s); retry in ${s} s.`,
          { details: { retryAfterSeconds: s, numWaiting, estimatedWaitSeconds: waitS, maxQueueWaitSeconds: this.maxWaitSeconds } },
        );
      }
    }
  }
}
