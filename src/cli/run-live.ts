// The live status line of `kernelchaos run` on a terminal: calls seen, faults injected and the time
// left, redrawn in place on stderr while the fault is armed, erased before the final summary.
import type { FaultCounters } from '../bpf/types.js';

export interface LiveTerminal {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

function clock(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${String(sec).padStart(2, '0')}s` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** The line's text; `leftMs` null when the fault lasts as long as the command. */
export function liveText(c: FaultCounters, leftMs: number | null, site: string): string {
  const left = leftMs === null ? 'until the command exits' : `${clock(leftMs)} left`;
  return `kernelchaos run: armed: ${c.calls} calls of ${site}, ${c.faults} faults injected, ${left}`;
}

export class LiveLine {
  private timer: NodeJS.Timeout | undefined;
  private shown = false;

  constructor(
    private readonly term: LiveTerminal,
    private readonly read: () => { counters: FaultCounters; leftMs: number | null },
    private readonly site: string,
    private readonly everyMs = 500,
  ) {}

  /** Only on a terminal: in a pipe or a log the line would be noise. */
  get enabled(): boolean {
    return this.term.isTTY === true;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    this.draw();
    this.timer = setInterval(() => this.draw(), this.everyMs);
    this.timer.unref();
  }

  draw(): void {
    let text: string;
    try {
      const { counters, leftMs } = this.read();
      text = liveText(counters, leftMs, this.site);
    } catch {
      return;
    }
    const width = this.term.columns ?? 80;
    if (text.length > width - 1) text = `${text.slice(0, Math.max(0, width - 2))}…`;
    // Carriage return, the text, erase to the end of the line: redrawn in place.
    this.term.write(`\r${text}\x1b[K`);
    this.shown = true;
  }

  /** Stops redrawing and erases the line so the next output starts on a clean line. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.shown) this.term.write('\r\x1b[K');
    this.shown = false;
  }
}
