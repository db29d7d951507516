// `spec.scheduler.cron`: what Chaos Mesh's robfig/cron standard parser accepts: 5 fields
// (minute hour day-of-month month day-of-week, names like MON and JAN, `?`), the descriptors
// @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly, `@every <go duration>`, and an
// optional `CRON_TZ=Zone ` / `TZ=Zone ` prefix. Times are UTC unless a zone is given.
// Field matching is croner's; the extensions croner has and robfig lacks (L, W, #) are rejected so
// a manifest never validates here and then fails in Chaos Mesh, or the other way round.
import { Cron } from 'croner';
import { formatGoDuration, parseGoDuration } from './duration.js';

export interface Schedule {
  /** The text as written. */
  readonly expression: string;
  /** The first run strictly after `date`, or null when there is none. */
  nextAfter(date: Date): Date | null;
  /** The latest run at or before `date`, or null when there is none (e.g. before the @every anchor). */
  previousAtOrBefore(date: Date): Date | null;
}

export type ScheduleResult = { ok: true; schedule: Schedule } | { ok: false; message: string };

export interface ScheduleOptions {
  /**
   * Where `@every` intervals are counted from (runs at anchor, anchor + d, ...): pass the
   * KernelChaos's creationTimestamp so every component computes the same runs. Defaults to the Unix epoch.
   */
  anchor?: Date;
  /**
   * Chaos Mesh's Schedule (`spec.schedule`) uses robfig's parser with SecondOptional: 6 fields
   * (seconds first) are accepted too. KernelChaos's 1.x `scheduler.cron` takes 5.
   */
  secondsOptional?: boolean;
}

/** robfig/cron rounds shorter @every intervals up to one second; we reject them instead. */
const MIN_EVERY_MS = 1000;
const MAX_EXPRESSION_LENGTH = 256;
const DESCRIPTORS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'] as const;

export function parseSchedule(expr: string, options: ScheduleOptions = {}): ScheduleResult {
  if (typeof expr !== 'string') return { ok: false, message: 'must be a string' };
  if (expr.length > MAX_EXPRESSION_LENGTH) return { ok: false, message: `must be at most ${MAX_EXPRESSION_LENGTH} characters` };
  let text = expr.trim();
  if (text === '') return { ok: false, message: 'must not be empty: write a cron expression such as "*/5 * * * *" or "@every 10m"' };
  let timezone = 'UTC';
  const tz = /^(?:CRON_TZ|TZ)=(\S+)\s+/.exec(text);
  if (tz) {
    timezone = tz[1] as string;
    if (!isTimeZone(timezone)) return { ok: false, message: `unknown time zone '${timezone}' (use an IANA name such as Europe/Berlin)` };
    text = text.slice(tz[0].length);
  }
  if (text.startsWith('@every')) return parseEvery(expr, text, options.anchor ?? new Date(0));
  if (text.startsWith('@')) {
    if (!(DESCRIPTORS as readonly string[]).includes(text)) {
      return { ok: false, message: `unknown descriptor '${text}': use one of ${DESCRIPTORS.join(', ')} or @every <duration>` };
    }
  } else {
    const fields = text.split(/\s+/);
    const six = options.secondsOptional === true && fields.length === 6;
    if (fields.length !== 5 && !six) {
      return {
        ok: false,
        message: options.secondsOptional
          ? `must have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${fields.length}: e.g. "*/5 * * * *"`
          : `must have 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}: e.g. "*/5 * * * *"`,
      };
    }
    const extension = fields.map(unsupportedExtension).find((m) => m !== null);
    if (extension) return { ok: false, message: extension };
  }
  let cron: Cron;
  try {
    const six = options.secondsOptional === true && !text.startsWith('@') && text.split(/\s+/).length === 6;
    cron = new Cron(text, { mode: six ? '6-part' : '5-part', timezone, paused: true });
  } catch (e) {
    return { ok: false, message: cronMessage(e) };
  }
  // A pattern like "0 0 30 2 *" (30 February) parses but never fires.
  if (cron.nextRun(new Date(0)) === null) return { ok: false, message: 'never runs: no date matches all the fields' };
  return {
    ok: true,
    schedule: {
      expression: expr,
      nextAfter: (date) => cron.nextRun(date),
      // croner's previousRuns is strict and drops milliseconds, so one millisecond later includes `date`.
      previousAtOrBefore: (date) => cron.previousRuns(1, new Date(date.getTime() + 1))[0] ?? null,
    },
  };
}

function parseEvery(expr: string, text: string, anchor: Date): ScheduleResult {
  const arg = text.slice('@every'.length).trim();
  if (arg === '') return { ok: false, message: '@every needs a duration, e.g. "@every 1m30s"' };
  const ms = parseGoDuration(arg);
  if (ms === null) return { ok: false, message: `@every needs a Go duration such as 90s or 1m30s, got '${arg}'` };
  if (ms < MIN_EVERY_MS) return { ok: false, message: `@every must be at least 1s, got ${formatGoDuration(ms)}` };
  const origin = anchor.getTime();
  const valid = Number.isFinite(origin);
  return {
    ok: true,
    schedule: {
      expression: expr,
      nextAfter(date) {
        const t = date.getTime();
        if (!valid || !Number.isFinite(t)) return null;
        if (t < origin) return new Date(origin);
        return new Date(origin + (Math.floor((t - origin) / ms) + 1) * ms);
      },
      previousAtOrBefore(date) {
        const t = date.getTime();
        if (!valid || !Number.isFinite(t) || t < origin) return null;
        return new Date(origin + Math.floor((t - origin) / ms) * ms);
      },
    },
  };
}

/** Quartz extensions that croner accepts but robfig/cron (Chaos Mesh) does not. */
function unsupportedExtension(field: string): string | null {
  for (const part of field.split(',')) {
    if (part.includes('#')) return `'${part}': the nth-weekday form (#) is not supported`;
    if (/^\d*L$|^LW$|^\d+W$/i.test(part)) return `'${part}': last-day (L) and weekday (W) forms are not supported`;
  }
  return null;
}

function cronMessage(e: unknown): string {
  const raw = e instanceof Error ? e.message : String(e);
  // croner prefixes its messages with "CronPattern: "; the field path already says what this is.
  return raw.replace(/^CronPattern:\s*/, '').replace(/\.$/, '');
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
