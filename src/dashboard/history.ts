// Faults over time per experiment, for the dashboard's plot: a bounded series of (time, total)
// samples per experiment, taken whenever the state changes and on a steady tick. Pure.
export interface Sample {
  /** Milliseconds since the epoch. */
  t: number;
  faults: number;
}

export class FaultHistory {
  private readonly series = new Map<string, Sample[]>();

  constructor(
    /** Samples kept per experiment (at a 5 s tick, 720 is an hour). */
    private readonly limit = 720,
  ) {}

  /** Records the totals at `t`; experiments absent from `totals` are forgotten. */
  record(t: number, totals: ReadonlyMap<string, number>): void {
    for (const key of this.series.keys()) if (!totals.has(key)) this.series.delete(key);
    for (const [key, faults] of totals) {
      let s = this.series.get(key);
      if (!s) this.series.set(key, (s = []));
      const last = s[s.length - 1];
      if (last && last.t >= t) {
        last.faults = faults;
        continue;
      }
      s.push({ t, faults });
      if (s.length > this.limit) s.splice(0, s.length - this.limit);
    }
  }

  snapshot(): Record<string, Sample[]> {
    const out: Record<string, Sample[]> = {};
    for (const [k, s] of this.series) out[k] = s.map((x) => ({ ...x }));
    return out;
  }
}
