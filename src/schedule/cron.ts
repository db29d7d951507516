// The schedule's view of src/api/cron.ts (the validator's parser), so the companion fires exactly
// when validation said it would.
import { parseSchedule } from '../api/cron.js';
import type { CronParser } from './phase.js';

export const parseCron: CronParser = (expr, anchor) => {
  const r = parseSchedule(expr, { anchor });
  return r.ok ? { ok: true, recurrence: r.schedule } : { ok: false, reason: r.message };
};
