import { describe, expect, it } from 'vitest';
import { formatGoDuration, parseGoDuration } from '../../src/api/duration.js';

describe('parseGoDuration (Go time.ParseDuration)', () => {
  it.each([
    ['0', 0],
    ['0s', 0],
    ['90s', 90_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1.5h', 5_400_000],
    ['2h45m30.5s', 9_930_500],
    ['500ms', 500],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['1500μs', 1.5],
    ['1000000ns', 1],
    ['.5s', 500],
    ['1.s', 1000],
    ['-5m', -300_000],
    ['+5m', 300_000],
    ['1h1h', 7_200_000],
  ])('%s = %f ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });
  it.each(['', '5', '1 m', '1min', 's', '.s', '1d', 'P1D', '1h 30m', '--5s', '5s ', ' 5s', '1e3s', 'Infinity', '9999999999999h', '1.2.3s'])(
    'rejects %j',
    (text) => {
      expect(parseGoDuration(text)).toBeNull();
    },
  );
  it('rejects non-strings and huge inputs without throwing', () => {
    expect(parseGoDuration(42 as unknown as string)).toBeNull();
    expect(parseGoDuration('1s'.repeat(10_000))).toBeNull();
  });
});

describe('formatGoDuration (Go Duration.String)', () => {
  it.each([
    [0, '0s'],
    [90_000, '1m30s'],
    [3_600_000, '1h0m0s'],
    [5_400_000, '1h30m0s'],
    [1500, '1.5s'],
    [500, '500ms'],
    [1.5, '1.5ms'],
    [0.0015, '1.5µs'],
    [0.000_5, '500ns'],
    [-90_000, '-1m30s'],
    [60_000.000_001, '1m0.000000001s'],
  ])('%f ms = %s', (ms, text) => {
    expect(formatGoDuration(ms)).toBe(text);
  });
  it('round-trips what it formats', () => {
    for (const ms of [1, 999, 1000, 61_000, 3_723_004, 86_400_000]) {
      expect(parseGoDuration(formatGoDuration(ms))).toBe(ms);
    }
  });
});
