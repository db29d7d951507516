// The shipped manifests must keep the admission-safety properties: a webhook outage never blocks pod
// creation, nothing unvalidated lands, the webhook never depends on itself, and the pod runs locked down.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { HANDLERS } from '../../src/webhook/app.js';

const repo = resolve(import.meta.dirname, '../..');
const dir = join(repo, 'manifests/webhook');

type Obj = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string } };
// Loosely typed views of the parts under test.
interface Webhook {
  name: string;
  admissionReviewVersions: string[];
  sideEffects: string;
  failurePolicy: string;
  timeoutSeconds: number;
  reinvocationPolicy?: string;
  clientConfig: { service: { name: string; namespace: string; path: string; port: number } };
  rules: { apiGroups: string[]; apiVersions: string[]; resources: string[]; operations: string[] }[];
  namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
}
interface Container {
  name: string;
  args: string[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { httpGet: { scheme: string; path: string; port: string | number } };
  livenessProbe?: { httpGet: { scheme: string; path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: { allowPrivilegeEscalation: boolean; readOnlyRootFilesystem: boolean; runAsNonRoot?: boolean; capabilities: { drop: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
}

const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
const admission = join(repo, 'manifests/admission/webhook-configurations.yaml');
const objects: Obj[] = [...files.map((f) => join(dir, f)), admission].flatMap((f) =>
  parseAllDocuments(readFileSync(f, 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null && o.kind !== 'Kustomization'),
);
const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
const one = (kind: string) => {
  const found = byKind(kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as Obj;
};
const webhooks = (kind: string) => (one(kind).webhooks as Webhook[]);
const allWebhooks = () => [...webhooks('MutatingWebhookConfiguration'), ...webhooks('ValidatingWebhookConfiguration')];

/** Every served version of each CRD, by plural resource. */
function servedVersions(): Map<string, { group: string; versions: string[] }> {
  const out = new Map<string, { group: string; versions: string[] }>();
  for (const f of readdirSync(join(repo, 'manifests/crds')).filter((x) => x.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(repo, 'manifests/crds', f), 'utf8'))) {
      const crd = doc.toJS() as { kind?: string; spec?: { group: string; names: { plural: string }; versions: { name: string; served: boolean }[] } };
      if (crd?.kind !== 'CustomResourceDefinition' || !crd.spec) continue;
      out.set(crd.spec.names.plural, { group: crd.spec.group, versions: crd.spec.versions.filter((v) => v.served).map((v) => v.name) });
    }
  }
  return out;
}

describe('webhook configurations', () => {
  it('every webhook: v1 reviews, no side effects, timeout <= 5 s, a path the server serves', () => {
    const hooks = allWebhooks();
    expect(hooks).toHaveLength(4);
    for (const h of hooks) {
      expect(h.admissionReviewVersions, h.name).toEqual(['v1']);
      expect(h.sideEffects, h.name).toBe('None');
      expect(h.timeoutSeconds, h.name).toBeGreaterThan(0);
      expect(h.timeoutSeconds, h.name).toBeLessThanOrEqual(5);
      expect(Object.keys(HANDLERS), h.name).toContain(h.clientConfig.service.path);
      expect(h.name).toMatch(/^[a-z0-9-]+\.kernelchaos\.dev$/);
    }
  });

  it('pods fail open (Ignore); KernelChaos and policies fail closed (Fail)', () => {
    for (const h of allWebhooks()) {
      const resources = h.rules.flatMap((r) => r.resources);
      if (resources.includes('pods')) expect(h.failurePolicy, h.name).toBe('Ignore');
      else expect(h.failurePolicy, h.name).toBe('Fail');
    }
    const podHooks = allWebhooks().filter((h) => h.rules.some((r) => r.resources.includes('pods')));
    expect(podHooks.map((h) => h.name)).toEqual(['mutate-pods.kernelchaos.dev']);
  });

  it('exclude kube-system and kernelchaos-system by name, and disabled namespaces from the pod injector', () => {
    for (const h of allWebhooks()) {
      const byName = h.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
      expect(byName?.operator, h.name).toBe('NotIn');
      expect(byName?.values, h.name).toEqual(expect.arrayContaining(['kube-system', 'kernelchaos-system']));
    }
    const pods = allWebhooks().find((h) => h.name === 'mutate-pods.kernelchaos.dev');
    expect(pods?.namespaceSelector.matchExpressions).toContainEqual({ key: 'kernelchaos.dev/injection', operator: 'NotIn', values: ['disabled'] });
  });

  it('mutating webhooks are re-invoked when needed', () => {
    for (const h of webhooks('MutatingWebhookConfiguration')) expect(h.reinvocationPolicy, h.name).toBe('IfNeeded');
  });

  it('register every served version of each custom resource, and the operations each endpoint handles', () => {
    const served = servedVersions();
    expect(served.size).toBeGreaterThanOrEqual(2);
    for (const h of allWebhooks()) {
      for (const rule of h.rules) {
        for (const resource of rule.resources) {
          const crd = served.get(resource);
          if (!crd) continue; // core pods
          expect(rule.apiGroups, h.name).toEqual([crd.group]);
          expect([...rule.apiVersions].sort(), h.name).toEqual([...crd.versions].sort());
        }
      }
    }
    const paths = Object.fromEntries(allWebhooks().map((h) => [h.clientConfig.service.path, h.rules[0]]));
    expect(paths['/mutate-pods']?.operations).toEqual(['CREATE']);
    expect(paths['/validate-kernelchaos']?.operations).toEqual(expect.arrayContaining(['CREATE', 'UPDATE']));
    expect(paths['/validate-kernelchaospolicy']?.resources).toEqual(['kernelchaospolicies']);
  });

  it('call the Service that fronts the Deployment', () => {
    const service = one('Service') as Obj & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] } };
    for (const h of allWebhooks()) {
      expect(h.clientConfig.service.name).toBe(service.metadata.name);
      expect(h.clientConfig.service.namespace).toBe(service.metadata.namespace);
      expect(h.clientConfig.service.port).toBe(443);
    }
    expect(service.spec.ports[0]).toMatchObject({ port: 443, targetPort: 'https' });
  });
});

describe('Deployment', () => {
  const deployment = () =>
    one('Deployment') as Obj & {
      spec: {
        replicas: number;
        selector: { matchLabels: Record<string, string> };
        template: {
          metadata: { labels: Record<string, string> };
          spec: {
            serviceAccountName: string;
            securityContext: { runAsNonRoot: boolean };
            affinity: { podAntiAffinity: unknown };
            containers: Container[];
            volumes: { name: string; secret?: { secretName: string } }[];
          };
        };
      };
    };

  it('runs 2 replicas spread across nodes, with a PodDisruptionBudget keeping one', () => {
    const d = deployment();
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.template.spec.affinity.podAntiAffinity).toBeDefined();
    const pdb = one('PodDisruptionBudget') as Obj & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
    expect(pdb.spec.minAvailable).toBe(1);
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) expect(d.spec.template.metadata.labels[k]).toBe(v);
    const service = one('Service') as Obj & { spec: { selector: Record<string, string> } };
    for (const [k, v] of Object.entries(service.spec.selector)) expect(d.spec.template.metadata.labels[k]).toBe(v);
  });

  it('every container: non-root, read-only root filesystem, no privilege escalation, no capabilities, resources', () => {
    const d = deployment();
    expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    for (const c of d.spec.template.spec.containers) {
      expect(c.securityContext.allowPrivilegeEscalation, c.name).toBe(false);
      expect(c.securityContext.readOnlyRootFilesystem, c.name).toBe(true);
      expect(c.securityContext.capabilities.drop, c.name).toEqual(['ALL']);
      expect(c.resources?.requests?.cpu, c.name).toBeDefined();
      expect(c.resources?.limits?.memory, c.name).toBeDefined();
    }
  });

  it('the webhook probes /readyz and /healthz over HTTPS on the port the Service targets, with the TLS Secret mounted', () => {
    const d = deployment();
    const webhook = d.spec.template.spec.containers.find((c) => c.args[0] === 'webhook');
    expect(webhook).toBeDefined();
    expect(webhook?.readinessProbe?.httpGet).toMatchObject({ scheme: 'HTTPS', path: '/readyz', port: 'https' });
    expect(webhook?.livenessProbe?.httpGet).toMatchObject({ scheme: 'HTTPS', path: '/healthz', port: 'https' });
    expect(webhook?.ports).toContainEqual({ name: 'https', containerPort: 8443, protocol: 'TCP' });
    expect(webhook?.args).toContain('--port=8443');
    const certArg = webhook?.args.find((a) => a.startsWith('--cert='))?.slice('--cert='.length) ?? '';
    const mount = webhook?.volumeMounts?.find((m) => certArg.startsWith(m.mountPath + '/'));
    const volume = d.spec.template.spec.volumes.find((v) => v.name === mount?.name);
    expect(volume?.secret?.secretName).toBe('kernelchaos-webhook-tls');
  });

  it('runs the controller as a second container of the same pod', () => {
    const names = deployment().spec.template.spec.containers.map((c) => c.args[0]);
    expect(names).toEqual(['webhook', 'controller']);
  });
});

describe('RBAC', () => {
  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
  const rules = (kind: string) => byKind(kind).flatMap((r) => (r.rules as Rule[]));
  const allows = (rs: Rule[], group: string, resource: string, verb: string) =>
    rs.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));

  it('grants what the webhook and controller need', () => {
    const cluster = rules('ClusterRole');
    for (const verb of ['get', 'list', 'watch']) {
      expect(allows(cluster, 'chaos-mesh.org', 'kernelchaos', verb)).toBe(true);
      expect(allows(cluster, 'kernelchaos.dev', 'kernelchaospolicies', verb)).toBe(true);
      expect(allows(cluster, '', 'namespaces', verb)).toBe(true);
      expect(allows(cluster, '', 'pods', verb)).toBe(true);
    }
    expect(allows(cluster, '', 'pods', 'patch')).toBe(true);
    expect(allows(cluster, 'chaos-mesh.org', 'kernelchaos/status', 'update')).toBe(true);
    expect(allows(cluster, 'chaos-mesh.org', 'kernelchaos/finalizers', 'update')).toBe(true);
    expect(allows(cluster, '', 'events', 'create')).toBe(true);
    expect(allows(rules('Role'), 'coordination.k8s.io', 'leases', 'update')).toBe(true);
  });

  it('grants nothing more: no wildcards, no secrets, no deletes, leases only in its namespace', () => {
    for (const r of [...rules('ClusterRole'), ...rules('Role')]) {
      expect(r.verbs).not.toContain('*');
      expect(r.resources).not.toContain('*');
      expect(r.apiGroups).not.toContain('*');
      expect(r.resources).not.toContain('secrets');
      expect(r.verbs).not.toContain('delete');
    }
    expect(rules('ClusterRole').some((r) => r.resources.includes('leases'))).toBe(false);
    for (const role of byKind('Role')) expect(role.metadata.namespace).toBe('kernelchaos-system');
    const sa = one('ServiceAccount');
    const d = one('Deployment') as Obj & { spec: { template: { spec: { serviceAccountName: string } } } };
    expect(d.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
  });
});

describe('packaging', () => {
  it('the namespace exists and keeps the injector out of itself', () => {
    const ns = one('Namespace') as Obj & { metadata: { labels: Record<string, string> } };
    expect(ns.metadata.name).toBe('kernelchaos-system');
    expect(ns.metadata.labels['kernelchaos.dev/injection']).toBe('disabled');
    for (const o of objects) if (o.metadata.namespace !== undefined) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('kernelchaos-system');
  });

  it('kustomization.yaml lists every manifest but the webhook configurations, which only install-secrets.sh applies (with caBundle)', () => {
    const k = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]?.toJS() as { resources: string[] };
    expect([...k.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml' && f !== 'webhook-configurations.yaml').sort());
    expect(readFileSync(join(repo, 'certs-scripts/install-secrets.sh'), 'utf8')).toMatch(/inject-ca-bundle .*webhook-configurations|inject-ca-bundle --ca "\$dir\/ca\/ca.crt" -f "\$configs"/);
  });

  it('the Dockerfile is multi-stage: a non-root runtime (default) and a companion target with clang and libbpf', () => {
    const text = readFileSync(join(repo, 'Dockerfile'), 'utf8');
    const stages = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[2]);
    expect(stages).toEqual(expect.arrayContaining(['build', 'prod-deps', 'companion', 'runtime']));
    expect(stages.at(-1)).toBe('runtime');
    const runtime = text.slice(text.lastIndexOf('AS runtime'));
    expect(runtime).toMatch(/^USER 65532:65532$/m);
    const companion = text.slice(text.indexOf('AS companion'), text.indexOf('AS runtime'));
    for (const pkg of ['clang', 'llvm', 'libbpf1', 'bpftool']) expect(companion).toContain(pkg);
    expect(text).toMatch(/npm ci --omit=dev/);
    const ignore = readFileSync(join(repo, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', '.git', '*.key']) expect(ignore).toContain(entry);
  });
});
