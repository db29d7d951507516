// Selector kinds with Chaos Mesh semantics, each against pod sets of 0, 1, 7 and 100 pods where the
// pods meant to match are built to match (every third pod) and the others differ in one property.
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import type { PodSelectorSpec } from '../../src/api/types.js';
import { nodeLabelLookup, podMatchesSelector, selectCandidates, selectorNamespaces } from '../../src/selection/index.js';
import { chaos, names, node, pod, type PodOpts } from './fixtures.js';

const SIZES = [0, 1, 7, 100] as const;
const NODES = [node('n-ssd', { disk: 'ssd', zone: 'a' }), node('n-hdd', { disk: 'hdd', zone: 'a' }), node('n-gpu', { gpu: 'yes' })];
const lookup = nodeLabelLookup(NODES);

interface Case {
  title: string;
  selector: PodSelectorSpec;
  /** What a matching pod looks like (built for every third pod). */
  hit: PodOpts & { namespace?: string };
  /** What a non-matching pod looks like. */
  miss: PodOpts & { namespace?: string };
}

const cases: Case[] = [
  { title: 'namespaces (empty = the experiment namespace)', selector: {}, hit: {}, miss: { namespace: 'other' } },
  { title: 'namespaces (listed)', selector: { namespaces: ['other', 'third'] }, hit: { namespace: 'third' }, miss: {} },
  { title: 'labelSelectors (all must hold)', selector: { labelSelectors: { app: 'web', tier: 'a' } }, hit: { labels: { app: 'web', tier: 'a' } }, miss: { labels: { app: 'web', tier: 'b' } } },
  { title: 'expressionSelectors In', selector: { expressionSelectors: [{ key: 'tier', operator: 'In', values: ['a', 'c'] }] }, hit: { labels: { tier: 'c' } }, miss: { labels: { tier: 'b' } } },
  { title: 'expressionSelectors NotIn (missing key matches)', selector: { expressionSelectors: [{ key: 'tier', operator: 'NotIn', values: ['b'] }] }, hit: { labels: {} }, miss: { labels: { tier: 'b' } } },
  { title: 'expressionSelectors Exists', selector: { expressionSelectors: [{ key: 'canary', operator: 'Exists' }] }, hit: { labels: { canary: '' } }, miss: { labels: { other: 'x' } } },
  { title: 'expressionSelectors DoesNotExist', selector: { expressionSelectors: [{ key: 'canary', operator: 'DoesNotExist' }] }, hit: { labels: { x: 'y' } }, miss: { labels: { canary: 'yes' } } },
  { title: 'annotationSelectors', selector: { annotationSelectors: { team: 'db' } }, hit: { annotations: { team: 'db' } }, miss: { annotations: { team: 'web' } } },
  { title: 'fieldSelectors spec.nodeName', selector: { fieldSelectors: { 'spec.nodeName': 'n-ssd' } }, hit: { node: 'n-ssd' }, miss: { node: 'n-hdd' } },
  { title: 'fieldSelectors status.phase', selector: { fieldSelectors: { 'status.phase': 'Pending' } }, hit: { phase: 'Pending' }, miss: { phase: 'Running' } },
  { title: 'fieldSelectors != (key suffix)', selector: { fieldSelectors: { 'status.phase!=': 'Running' } }, hit: { phase: 'Failed' }, miss: { phase: 'Running' } },
  { title: 'nodes (names)', selector: { nodes: ['n-gpu'] }, hit: { node: 'n-gpu' }, miss: { node: 'n-ssd' } },
  { title: 'nodeSelectors (node labels)', selector: { nodeSelectors: { disk: 'ssd' } }, hit: { node: 'n-ssd' }, miss: { node: 'n-hdd' } },
  { title: 'nodes ∪ nodeSelectors', selector: { nodes: ['n-gpu'], nodeSelectors: { disk: 'hdd' } }, hit: { node: 'n-hdd' }, miss: { node: 'n-ssd' } },
  { title: 'nodeSelectors never match an unscheduled pod', selector: { nodeSelectors: { zone: 'a' } }, hit: { node: 'n-ssd' }, miss: {} },
  { title: 'podPhaseSelectors', selector: { podPhaseSelectors: ['Pending', 'Failed'] }, hit: { phase: 'Failed' }, miss: { phase: 'Running' } },
  { title: 'podPhaseSelectors empty = every phase', selector: { podPhaseSelectors: [] }, hit: { phase: 'Succeeded' }, miss: { namespace: 'elsewhere' } },
];

function build(n: number, c: Case): { all: V1Pod[]; expected: string[] } {
  const all: V1Pod[] = [];
  const expected: string[] = [];
  for (let i = 0; i < n; i++) {
    const isHit = i % 3 === 0;
    const { namespace = 'apps', ...opts } = isHit ? c.hit : c.miss;
    const p = pod(namespace, `p-${i}`, opts);
    all.push(p);
    if (isHit) expected.push(`${namespace}/p-${i}`);
  }
  return { all, expected };
}

describe('selector kinds over 0, 1, 7, 100 pods', () => {
  for (const c of cases) {
    for (const n of SIZES) {
      it(`${c.title}: ${n} pods`, () => {
        const { all, expected } = build(n, c);
        const got = selectCandidates(chaos({ selector: c.selector }), all, { nodeLabels: lookup });
        expect(names(got)).toEqual(expected);
        expect(got).toHaveLength(n === 0 ? 0 : Math.ceil(n / 3));
      });
    }
  }
});

describe('explicit pods (Chaos Mesh: every other selector is ignored)', () => {
  const all = [
    pod('apps', 'a', { phase: 'Pending', labels: { app: 'x' } }),
    pod('apps', 'b'),
    pod('other', 'a', { phase: 'Succeeded' }),
    pod('other', 'c'),
  ];
  it('selects exactly the named pods across namespaces, ignoring labels, namespaces and phases', () => {
    const selector: PodSelectorSpec = {
      pods: { apps: ['a', 'missing'], other: ['a'] },
      namespaces: ['nowhere'],
      labelSelectors: { app: 'web' },
      podPhaseSelectors: ['Running'],
    };
    expect(names(selectCandidates(chaos({ selector }), all))).toEqual(['apps/a', 'other/a']);
  });
  it('names are per namespace: the same name elsewhere is not selected', () => {
    expect(names(selectCandidates(chaos({ selector: { pods: { other: ['c'] } } }), all))).toEqual(['other/c']);
  });
  it('an empty map means no explicit pods (the other selectors apply)', () => {
    expect(names(selectCandidates(chaos({ selector: { pods: {} } }), all))).toEqual(['apps/a', 'apps/b']);
  });
  it('reaches the namespaces of the explicit pods', () => {
    expect(selectorNamespaces({ pods: { b: ['x'], a: ['y'] }, namespaces: ['c'] }, 'd')).toEqual(['a', 'b']);
    expect(selectorNamespaces({}, 'd')).toEqual(['d']);
    expect(selectorNamespaces({ namespaces: ['z', 'y', 'z'] }, 'd')).toEqual(['y', 'z']);
  });
});

describe('combined selectors are ANDed', () => {
  it('a pod must satisfy namespace, labels, expressions, annotations, fields, nodes and phases together', () => {
    const selector: PodSelectorSpec = {
      namespaces: ['apps'],
      labelSelectors: { app: 'web' },
      expressionSelectors: [{ key: 'tier', operator: 'In', values: ['a'] }],
      annotationSelectors: { team: 'db' },
      fieldSelectors: { 'metadata.name': 'good' },
      nodeSelectors: { disk: 'ssd' },
      podPhaseSelectors: ['Running'],
    };
    const good: PodOpts = { labels: { app: 'web', tier: 'a' }, annotations: { team: 'db' }, node: 'n-ssd', phase: 'Running' };
    const base = pod('apps', 'good', good);
    expect(podMatchesSelector(selector, 'apps', base, lookup)).toBe(true);
    const variants: V1Pod[] = [
      pod('other', 'good', good),
      pod('apps', 'good', { ...good, labels: { app: 'web', tier: 'b' } }),
      pod('apps', 'good', { ...good, labels: { tier: 'a' } }),
      pod('apps', 'good', { ...good, annotations: {} }),
      pod('apps', 'bad', good),
      pod('apps', 'good', { ...good, node: 'n-hdd' }),
      pod('apps', 'good', { ...good, node: 'unknown-node' }),
      pod('apps', 'good', { ...good, phase: 'Pending' }),
    ];
    for (const v of variants) expect(podMatchesSelector(selector, 'apps', v, lookup)).toBe(false);
    // Without node labels, a nodeSelector cannot be satisfied.
    expect(podMatchesSelector(selector, 'apps', base)).toBe(false);
  });

  it('a field selector on a field the apiserver cannot select never matches', () => {
    expect(podMatchesSelector({ fieldSelectors: { 'spec.priority': '0' } }, 'apps', pod('apps', 'x'))).toBe(false);
  });

  it('a pod without a namespace counts as default', () => {
    const p = pod('default', 'x');
    delete p.metadata!.namespace;
    expect(podMatchesSelector({}, 'default', p)).toBe(true);
    expect(podMatchesSelector({}, 'apps', p)).toBe(false);
  });
});
