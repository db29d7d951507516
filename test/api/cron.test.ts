import { describe, expect, it } from 'vitest';
import { parseSchedule, type Schedule } from '../../src/api/cron.js';

function schedule(expr: string, anchor?: Date): Schedule {
  const r = parseSchedule(expr, anchor ? { anchor } : {});
  if (!r.ok) throw new Error(r.message);
  return r.schedule;
}
const at = (iso: string): Date => new Date(iso);

describe('parseSchedule', () => {
  it('computes 5-field runs in UTC, strictly after and at-or-before', () => {
    const s = schedule('*/5 * * * *');
    expect(s.nextAfter(at('2026-01-01T00:10:00Z'))).toEqual(at('2026-01-01T00:15:00Z'));
    expect(s.nextAfter(at('2026-01-01T00:12:30Z'))).toEqual(at('2026-01-01T00:15:00Z'));
    expect(s.previousAtOrBefore(at('2026-01-01T00:10:00Z'))).toEqual(at('2026-01-01T00:10:00Z'));
    expect(s.previousAtOrBefore(at('2026-01-01T00:14:59.999Z'))).toEqual(at('2026-01-01T00:10:00Z'));
    expect(s.expression).toBe('*/5 * * * *');
  });
  it('supports names, ? and descriptors', () => {
    expect(schedule('0 9 * * MON-FRI').nextAfter(at('2026-01-02T10:00:00Z'))).toEqual(at('2026-01-05T09:00:00Z')); // Fri -> Mon
    expect(schedule('@hourly').nextAfter(at('2026-01-01T00:00:00Z'))).toEqual(at('2026-01-01T01:00:00Z'));
    expect(schedule('@daily').previousAtOrBefore(at('2026-03-04T12:00:00Z'))).toEqual(at('2026-03-04T00:00:00Z'));
    expect(schedule('@midnight').nextAfter(at('2026-03-04T12:00:00Z'))).toEqual(at('2026-03-05T00:00:00Z'));
    expect(schedule('@weekly').nextAfter(at('2026-01-01T00:00:00Z'))).toEqual(at('2026-01-04T00:00:00Z')); // Sunday
    expect(schedule('@monthly').nextAfter(at('2026-01-15T00:00:00Z'))).toEqual(at('2026-02-01T00:00:00Z'));
    expect(schedule('@yearly').nextAfter(at('2026-06-01T00:00:00Z'))).toEqual(at('2027-01-01T00:00:00Z'));
    expect(schedule('0 0 1 * ?').nextAfter(at('2026-01-15T00:00:00Z'))).toEqual(at('2026-02-01T00:00:00Z'));
  });
  it('honours a CRON_TZ prefix', () => {
    // 09:00 in Berlin in January (UTC+1) is 08:00 UTC.
    expect(schedule('CRON_TZ=Europe/Berlin 0 9 * * *').nextAfter(at('2026-01-01T00:00:00Z'))).toEqual(at('2026-01-01T08:00:00Z'));
  });
  it('anchors @every to the given time (the object creationTimestamp)', () => {
    const created = at('2026-01-01T00:00:20Z');
    const s = schedule('@every 1m30s', created);
    expect(s.previousAtOrBefore(at('2026-01-01T00:00:00Z'))).toBeNull();
    expect(s.nextAfter(at('2026-01-01T00:00:00Z'))).toEqual(created);
    expect(s.previousAtOrBefore(created)).toEqual(created);
    expect(s.nextAfter(created)).toEqual(at('2026-01-01T00:01:50Z'));
    expect(s.previousAtOrBefore(at('2026-01-01T00:03:19Z'))).toEqual(at('2026-01-01T00:01:50Z'));
    expect(s.previousAtOrBefore(at('2026-01-01T00:03:20Z'))).toEqual(at('2026-01-01T00:03:20Z'));
    // Without an anchor, runs count from the Unix epoch: every component computes the same ones.
    expect(schedule('@every 1h').nextAfter(at('2026-01-01T00:30:00Z'))).toEqual(at('2026-01-01T01:00:00Z'));
  });
  it('finds leap-day runs years ahead', () => {
    expect(schedule('0 0 29 2 *').nextAfter(at('2026-01-01T00:00:00Z'))).toEqual(at('2028-02-29T00:00:00Z'));
  });
  it.each([
    ['', 'must not be empty'],
    ['* * * *', 'must have 5 fields'],
    ['0 * * * * *', 'must have 5 fields'],
    ['60 * * * *', 'minute'],
    ['* 24 * * *', 'hour'],
    ['* * * 13 *', 'month'],
    ['a b c d e', 'illegal characters'],
    ['@sometimes', 'unknown descriptor'],
    ['@every', 'needs a duration'],
    ['@every 90', 'Go duration'],
    ['@every 0s', 'at least 1s'],
    ['@every -1m', 'at least 1s'],
    ['0 0 30 2 *', 'never runs'],
    ['0 0 L * *', 'last-day'],
    ['0 0 15W * *', 'weekday (W)'],
    ['0 0 * * 5#3', 'nth-weekday'],
    ['TZ=Nowhere/City 0 * * * *', 'unknown time zone'],
  ])('rejects %j', (expr, message) => {
    const r = parseSchedule(expr);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(message);
  });
  it('keeps month and day names that contain L or W', () => {
    expect(parseSchedule('0 0 * JUL WED').ok).toBe(true);
  });
});
