// Least privilege, checked against the code: each component's RBAC grants exactly the verbs its code
// calls (the tables next to those calls, and the kinds its informers watch), and nothing else.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CONTROLLER_KINDS, controllerScopes } from '../../src/controller/controller.js';
import { EXECUTOR_PERMISSIONS } from '../../src/controller/executor.js';
import { SCHEDULE_RUNNER_PERMISSIONS } from '../../src/controller/schedule-runner.js';
import { PROFILE_PERMISSIONS, KERNELCHAOS_CRD, SCHEDULES_CRD, WORKFLOWS_CRD } from '../../src/kube/install-profile.js';
import { LEADER_PERMISSIONS } from '../../src/controller/leader.js';
import { REPORT_PERMISSIONS } from '../../src/companion/kube-sink.js';
import { COMPANION_KINDS, companionScopes } from '../../src/companion/run.js';
import { WEBHOOK_KINDS } from '../../src/webhook/context.js';
import { watchPermissions, type Permission } from '../../src/kube/permissions.js';

const repo = resolve(import.meta.dirname, '../..');
const RELEASE = 'kernelchaos-system';
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
type Obj = { kind: string; metadata: { name: string; namespace?: string }; rules?: Rule[]; roleRef?: { kind: string; name: string }; subjects?: { kind: string; name: string; namespace: string }[] };

const objects: Obj[] = ['manifests/webhook/rbac.yaml', 'manifests/companion/rbac.yaml', 'manifests/companion/serviceaccount.yaml'].flatMap((f) =>
  parseAllDocuments(readFileSync(join(repo, f), 'utf8')).map((d) => d.toJS() as Obj).filter((o) => o !== null),
);

/** "scope group/resource verb" for everything bound to a ServiceAccount. */
function granted(serviceAccount: string): Set<string> {
  const out = new Set<string>();
  for (const binding of objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding')) {
    if (!binding.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === serviceAccount && s.namespace === RELEASE)) continue;
    const role = objects.find((o) => o.kind === binding.roleRef?.kind && o.metadata.name === binding.roleRef?.name);
    expect(role, `${binding.kind}/${binding.metadata.name} -> ${binding.roleRef?.kind}/${binding.roleRef?.name}`).toBeDefined();
    const scope = role?.kind === 'Role' ? 'release-namespace' : 'cluster';
    if (role?.kind === 'Role') expect(role.metadata.namespace).toBe(RELEASE);
    for (const rule of role?.rules ?? []) {
      for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) out.add(`${scope} ${g}/${r} ${v}`);
    }
  }
  return out;
}

function used(permissions: readonly Permission[]): Set<string> {
  return new Set(permissions.flatMap((p) => p.verbs.map((v) => `${p.scope} ${p.group}/${p.resource} ${v}`)));
}

const COMPONENTS: Record<string, readonly Permission[]> = {
  'kernelchaos-webhook': [...watchPermissions(WEBHOOK_KINDS), ...PROFILE_PERMISSIONS],
  'kernelchaos-controller': [...watchPermissions(CONTROLLER_KINDS, controllerScopes(RELEASE)), ...EXECUTOR_PERMISSIONS, ...LEADER_PERMISSIONS, ...SCHEDULE_RUNNER_PERMISSIONS, ...PROFILE_PERMISSIONS],
  'kernelchaos-companion': [...watchPermissions(COMPANION_KINDS, companionScopes('node-1', RELEASE)), ...REPORT_PERMISSIONS],
};

describe('RBAC: each ServiceAccount gets exactly what its code calls', () => {
  for (const [sa, permissions] of Object.entries(COMPONENTS)) {
    it(sa, () => {
      expect(objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === sa && o.metadata.namespace === RELEASE), `ServiceAccount ${sa}`).toBe(true);
      const have = granted(sa);
      const need = used(permissions);
      expect([...have].filter((g) => !need.has(g)).sort(), 'granted but never used').toEqual([]);
      expect([...need].filter((n) => !have.has(n)).sort(), 'used but not granted').toEqual([]);
    });
  }

  it('the network-facing webhook writes nothing; nothing anywhere touches secrets or uses wildcards', () => {
    expect([...granted('kernelchaos-webhook')].filter((g) => !/ (get|list|watch)$/.test(g))).toEqual([]);
    for (const r of objects.flatMap((o) => o.rules ?? [])) {
      for (const field of [r.verbs, r.resources, r.apiGroups]) expect(field).not.toContain('*');
      expect(r.resources).not.toContain('secrets');
    }
  });

  it('the CRDs are readable by name only: the three the install profile is read from', () => {
    const crdRules = objects.flatMap((o) => o.rules ?? []).filter((r) => r.resources.includes('customresourcedefinitions'));
    expect(crdRules.length).toBe(2);
    for (const r of crdRules) {
      expect(r.verbs).toEqual(['get']);
      expect([...(r.resourceNames ?? [])].sort()).toEqual([KERNELCHAOS_CRD, SCHEDULES_CRD, WORKFLOWS_CRD].sort());
    }
  });
});
