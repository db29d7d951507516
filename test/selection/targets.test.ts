// Opt-in eligibility and the whole pipeline (selector ∩ eligible, then mode), including the seed
// example of the brief.
import { describe, expect, it } from 'vitest';
import { eligibility, selectTargets } from '../../src/selection/index.js';
import { chaos, names, namespace, node, pod, pods } from './fixtures.js';

const WEBHOOK_NS = 'kernelchaos-system';

describe('eligibility', () => {
  const optIn = { 'kernelchaos.dev/inject': 'true' };
  it.each([
    ['pod annotation opts in', pod('apps', 'a', { annotations: optIn }), namespace('apps'), { eligible: true }],
    ['namespace label enabled opts every pod in', pod('apps', 'a'), namespace('apps', { 'kernelchaos.dev/injection': 'enabled' }), { eligible: true }],
    ['neither', pod('apps', 'a'), namespace('apps'), { eligible: false, reason: 'not-opted-in' }],
    ['annotation other than "true"', pod('apps', 'a', { annotations: { 'kernelchaos.dev/inject': 'yes' } }), namespace('apps'), { eligible: false, reason: 'not-opted-in' }],
    ['disabled namespace wins over the pod annotation', pod('apps', 'a', { annotations: optIn }), namespace('apps', { 'kernelchaos.dev/injection': 'disabled' }), { eligible: false, reason: 'namespace-disabled' }],
    ['kube-system never', pod('kube-system', 'a', { annotations: optIn }), namespace('kube-system', { 'kernelchaos.dev/injection': 'enabled' }), { eligible: false, reason: 'system-namespace' }],
    ["the webhook's own namespace never", pod(WEBHOOK_NS, 'a', { annotations: optIn }), namespace(WEBHOOK_NS, { 'kernelchaos.dev/injection': 'enabled' }), { eligible: false, reason: 'system-namespace' }],
    ['unknown namespace object: the annotation still counts', pod('apps', 'a', { annotations: optIn }), undefined, { eligible: true }],
  ] as const)('%s', (_title, p, ns, expected) => {
    expect(eligibility(p, ns, WEBHOOK_NS)).toEqual(expected);
  });
});

describe('selectTargets', () => {
  it("the seed example: mode one over the chaos-mount namespace picks one opted-in pod", () => {
    const exp = chaos({ mode: 'one', selector: { namespaces: ['chaos-mount'] } }, { namespace: 'chaos-testing', name: 'kernel-chaos-example' });
    const all = [...pods(3, 'chaos-mount'), ...pods(2, 'chaos-testing')].map((p) => {
      delete p.metadata!.annotations!['kernelchaos.dev/inject'];
      return p;
    });
    const nss = [namespace('chaos-mount', { 'kernelchaos.dev/injection': 'enabled' }), namespace('chaos-testing', { 'kernelchaos.dev/injection': 'enabled' })];
    const sel = selectTargets(exp, all, nss, [], { webhookNamespace: WEBHOOK_NS });
    expect(sel.targets).toHaveLength(1);
    expect(sel.targets[0]?.metadata?.namespace).toBe('chaos-mount');
    expect(sel.eligible).toHaveLength(3);
    expect(sel.skipped).toEqual([]);
  });

  it('mode applies to eligible pods only; excluded pods are reported with their reason', () => {
    const exp = chaos({ mode: 'all', selector: { namespaces: ['apps', 'off', 'kube-system'] } });
    const all = [
      ...pods(4, 'apps'),
      pod('apps', 'shy'),
      ...pods(2, 'off'),
      ...pods(1, 'kube-system'),
    ];
    const nss = [namespace('apps'), namespace('off', { 'kernelchaos.dev/injection': 'disabled' }), namespace('kube-system')];
    const sel = selectTargets(exp, all, nss, [node('n1')], { webhookNamespace: WEBHOOK_NS });
    expect(names(sel.targets)).toEqual(['apps/app-0', 'apps/app-1', 'apps/app-2', 'apps/app-3']);
    expect(sel.skipped.map((s) => [names([s.pod])[0], s.reason])).toEqual([
      ['apps/shy', 'not-opted-in'],
      ['off/app-0', 'namespace-disabled'],
      ['off/app-1', 'namespace-disabled'],
      ['kube-system/app-0', 'system-namespace'],
    ]);
  });

  it('fixed-percent counts eligible pods, not everything the selector matched', () => {
    const exp = chaos({ mode: 'fixed-percent', value: '50', selector: {} });
    const all = [...pods(10, 'apps'), ...Array.from({ length: 10 }, (_, i) => pod('apps', `closed-${i}`))];
    expect(selectTargets(exp, all, [namespace('apps')], [], { webhookNamespace: WEBHOOK_NS }).targets).toHaveLength(5);
  });

  it('node selectors use the nodes passed in', () => {
    const exp = chaos({ mode: 'all', selector: { nodeSelectors: { pool: 'chaos' } } });
    const all = pods(6, 'apps', (i) => ({ node: i < 2 ? 'n-chaos' : 'n-other' }));
    const sel = selectTargets(exp, all, [], [node('n-chaos', { pool: 'chaos' }), node('n-other')], { webhookNamespace: WEBHOOK_NS });
    expect(names(sel.targets)).toEqual(['apps/app-0', 'apps/app-1']);
  });

  it('an unusable value targets nothing and says why', () => {
    const sel = selectTargets(chaos({ mode: 'fixed', value: 'x' }), pods(3), [], [], { webhookNamespace: WEBHOOK_NS });
    expect(sel.targets).toEqual([]);
    expect(sel.modeError).toMatch(/spec\.value/);
  });
});
