// The kubectl text forms of label and field selectors (used for ?labelSelector= / ?fieldSelector=).
import { describe, expect, it } from 'vitest';
import { fieldRequirementsMatch, parseFieldSelector, parseLabelSelector, requirementsMatch } from '../../src/selection/index.js';
import { pod } from './fixtures.js';

describe('parseLabelSelector', () => {
  const matches = (text: string, labels: Record<string, string>): boolean => {
    const parsed = parseLabelSelector(text);
    if (!parsed.ok) throw new Error(parsed.message);
    return requirementsMatch(parsed.requirements, labels);
  };
  it.each([
    ['kernelchaos.dev/target=true', { 'kernelchaos.dev/target': 'true' }, true],
    ['kernelchaos.dev/target==true', { 'kernelchaos.dev/target': 'false' }, false],
    ['app!=web', {}, true],
    ['app!=web', { app: 'web' }, false],
    ['tier in (a, b),app', { tier: 'b', app: '' }, true],
    ['tier notin (a,b)', { tier: 'a' }, false],
    ['!canary', { canary: 'x' }, false],
    ['!canary,app=web', { app: 'web' }, true],
    ['', { anything: 'x' }, true],
  ] as const)('%s on %j -> %s', (text, labels, expected) => {
    expect(matches(text, labels)).toBe(expected);
  });
  it('rejects garbage with a message', () => {
    const parsed = parseLabelSelector('a=b=c');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toContain("'a=b=c'");
  });
});

describe('parseFieldSelector', () => {
  it('matches spec.nodeName and status.phase with = and !=', () => {
    const parsed = parseFieldSelector('spec.nodeName=n1,status.phase!=Failed');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(fieldRequirementsMatch(parsed.requirements, pod('a', 'b', { node: 'n1' }))).toBe(true);
    expect(fieldRequirementsMatch(parsed.requirements, pod('a', 'b', { node: 'n2' }))).toBe(false);
    expect(fieldRequirementsMatch(parsed.requirements, pod('a', 'b', { node: 'n1', phase: 'Failed' }))).toBe(false);
  });
  it('refuses fields the apiserver does not index, listing the supported ones', () => {
    const parsed = parseFieldSelector('spec.priority=1');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(/spec\.priority.*supported: metadata\.name/);
  });
});
