// How many admission requests the webhook works on at once. Bodies are read (and parsed) only by a
// request holding a slot; waiting requests stay unread in their sockets (TCP backpressure), so
// memory is bounded by the slots, not by how many clients send at once. Small bodies (the usual
// AdmissionReview) have their own lane, so a flood of large ones cannot delay them; past the queue
// a request is answered at once (429), and one that waits too long gets 503, both well inside the
// apiserver's timeout, so its failurePolicy applies instead of a hung call.

export interface LaneLimits {
  /** Requests in this lane being read or reviewed at once. */
  concurrent: number;
  /** Requests waiting for a slot; more are refused with 429. */
  queued: number;
}

export interface LimiterOptions {
  /** Declared Content-Length at or below this uses the small lane. */
  smallBodyBytes: number;
  small: LaneLimits;
  large: LaneLimits;
  /** Longest wait for a slot before a 503. */
  maxWaitMs: number;
}

export const DEFAULT_LIMITS: LimiterOptions = {
  smallBodyBytes: 64 * 1024,
  small: { concurrent: 16, queued: 256 },
  // Two 3 MiB bodies at once: each parses for tens of milliseconds on the one event loop, so more
  // in parallel would not finish sooner, only hold more memory and delay small reviews between them.
  // Past 16 waiting, a large body gets 429 at once without being read.
  large: { concurrent: 2, queued: 16 },
  maxWaitMs: 2000,
};

export type Admission =
  | { kind: 'granted'; release: () => void }
  | { kind: 'refused'; status: 429 | 503; message: string };

interface Waiter {
  grant: (a: Admission) => void;
  timer: NodeJS.Timeout;
}

class Lane {
  active = 0;
  readonly waiting: Waiter[] = [];
  constructor(readonly name: string, readonly limits: LaneLimits) {}
}

export class ConcurrencyLimiter {
  private readonly small: Lane;
  private readonly large: Lane;

  constructor(private readonly opts: LimiterOptions = DEFAULT_LIMITS) {
    this.small = new Lane('small', opts.small);
    this.large = new Lane('large', opts.large);
  }

  /** A slot for a request that declared `contentLength` bytes (undefined: chunked, treated as large). */
  acquire(contentLength: number | undefined, done: (a: Admission) => void): void {
    const lane = contentLength !== undefined && contentLength <= this.opts.smallBodyBytes ? this.small : this.large;
    if (lane.active < lane.limits.concurrent) {
      lane.active++;
      done({ kind: 'granted', release: this.releaser(lane) });
      return;
    }
    if (lane.waiting.length >= lane.limits.queued) {
      done({ kind: 'refused', status: 429, message: `the webhook is busy (${lane.limits.concurrent} ${lane.name} requests in progress, ${lane.waiting.length} queued); retry` });
      return;
    }
    const waiter: Waiter = {
      grant: done,
      timer: setTimeout(() => {
        const at = lane.waiting.indexOf(waiter);
        if (at >= 0) lane.waiting.splice(at, 1);
        done({ kind: 'refused', status: 503, message: `the webhook is overloaded: no slot for ${this.opts.maxWaitMs} ms; retry` });
      }, this.opts.maxWaitMs),
    };
    lane.waiting.push(waiter);
  }

  /** Requests in progress and waiting, per lane (for metrics and tests). */
  load(): { small: { active: number; waiting: number }; large: { active: number; waiting: number } } {
    return {
      small: { active: this.small.active, waiting: this.small.waiting.length },
      large: { active: this.large.active, waiting: this.large.waiting.length },
    };
  }

  private releaser(lane: Lane): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = lane.waiting.shift();
      if (next) {
        clearTimeout(next.timer);
        next.grant({ kind: 'granted', release: this.releaser(lane) });
      } else {
        lane.active--;
      }
    };
  }
}
