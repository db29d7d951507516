// Schedule windows of a KernelChaosPolicy: pure time arithmetic in UTC.
import type { ScheduleWindow } from '../api/types.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
type Day = (typeof DAYS)[number];

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

function dayAllowed(window: ScheduleWindow, day: Day): boolean {
  return !window.days || window.days.length === 0 || window.days.includes(day);
}

/**
 * Whether `at` (UTC) falls inside the window. A window whose end is not after its start wraps past
 * midnight (22:00-06:00); its `days` name the day it opens on, so Fri 22:00-06:00 covers Sat 03:00.
 */
export function inWindow(window: ScheduleWindow, at: Date): boolean {
  const minute = at.getUTCHours() * 60 + at.getUTCMinutes();
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const today = DAYS[at.getUTCDay()] as Day;
  const yesterday = DAYS[(at.getUTCDay() + 6) % 7] as Day;
  if (start < end) return dayAllowed(window, today) && minute >= start && minute < end;
  // Wrapping (or a full-day window when start == end).
  if (minute >= start) return dayAllowed(window, today);
  return minute < end && dayAllowed(window, yesterday);
}

export function inAnyWindow(windows: readonly ScheduleWindow[], at: Date): boolean {
  return windows.some((w) => inWindow(w, at));
}

export function formatWindow(window: ScheduleWindow): string {
  const days = window.days && window.days.length > 0 ? `${window.days.join(',')} ` : '';
  return `${days}${window.start}-${window.end} UTC`;
}

export function formatUtc(at: Date): string {
  return `${DAYS[at.getUTCDay()]} ${at.toISOString().slice(11, 16)} UTC`;
}
