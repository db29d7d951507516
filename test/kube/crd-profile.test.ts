// Profile detection from the installed CRD: Chaos Mesh's real one (its Helm chart, kept as a fixture)
// and ours (manifests/crds), and which of the fields kernelchaos writes Chaos Mesh's schema would prune.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { detectProfile, prunedPaths } from '../../src/kube/crd-profile.js';

const ROOT = join(import.meta.dirname, '..', '..');
const chaosMeshCrd = parse(readFileSync(join(ROOT, 'test', 'fixtures', 'chaos-mesh', 'cm-helm-crd-kernelchaos.yaml'), 'utf8')) as unknown;
const ourCrd = parse(readFileSync(join(ROOT, 'manifests', 'crds', 'kernelchaos.chaos-mesh.org.yaml'), 'utf8')) as unknown;

describe('detectProfile', () => {
  it("Chaos Mesh's Helm CRD: beside-Chaos-Mesh profile, no status subresource, value a string, no scheduler", () => {
    expect(detectProfile(chaosMeshCrd)).toMatchObject({ profile: 'chaos-mesh', statusSubresource: false, valueType: 'string', scheduler: false });
  });
  it('our CRD: standalone profile', () => {
    expect(detectProfile(ourCrd)).toMatchObject({ profile: 'standalone', statusSubresource: true, valueType: 'int-or-string', scheduler: true });
  });
  it('anything else is unknown, never guessed', () => {
    expect(detectProfile({ spec: { group: 'example.com' } }).profile).toBe('unknown');
    expect(detectProfile(null).profile).toBe('unknown');
  });
  it("what Chaos Mesh's schema keeps of the status kernelchaos writes: Chaos Mesh's fields stay, our three extras are pruned", () => {
    const p = detectProfile(chaosMeshCrd);
    if (p.profile !== 'chaos-mesh') throw new Error('profile');
    const object = {
      spec: { mode: 'fixed', value: '1', selector: { namespaces: ['a'] }, containerNames: ['c'], duration: '30s', failKernRequest: { failtype: 2, callchain: [{ parameters: 'struct bio *bio', predicate: 'bio->bi_iter.bi_sector == 128' }] } },
      status: {
        conditions: [{ type: 'Selected', status: 'True', reason: 'PodsSelected' }],
        experiment: {
          desiredPhase: 'Stop',
          containerRecords: [{ id: 'a/p/c', selectorKey: '.', phase: 'Injected', injectedCount: 1, recoveredCount: 0, faultsInjected: 3, reason: 'r', node: 'n', events: [{ type: 'Succeeded', operation: 'Apply', timestamp: '2026-12-01T00:00:00Z', message: 'm' }] }],
        },
      },
    };
    expect(prunedPaths(p.schema, object)).toEqual([
      'status.experiment.containerRecords[0].faultsInjected',
      'status.experiment.containerRecords[0].reason',
      'status.experiment.containerRecords[0].node',
    ]);
    // The 1.x scheduler is not in Chaos Mesh's CRD: it would be dropped silently.
    expect(prunedPaths(p.schema, { spec: { scheduler: { cron: '@hourly' } } })).toEqual(['spec.scheduler']);
  });
});
