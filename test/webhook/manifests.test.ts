// The shipped manifests must keep the admission-safety properties: a webhook outage never blocks pod
// creation, nothing unvalidated lands, the webhook never depends on itself, and the pod runs locked down.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { HANDLERS } from '../../src/webhook/app.js';
import { INJECT_ANNOTATION, INJECTION_NAMESPACE_LABEL } from '../../src/api/labels.js';

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
  namespaceSelector?: { matchExpressions: { key: string; operator: string; values: string[] }[] };
  objectSelector?: { matchExpressions: { key: string; operator: string; values: string[] }[] };
  matchConditions?: { name: string; expression: string }[];
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
/** The Service the apiserver calls (the metrics Service is tested in test/metrics/manifests.test.ts). */
const admissionService = () => {
  const found = byKind('Service').filter((o) => o.metadata.name === 'kernelchaos-webhook');
  expect(found).toHaveLength(1);
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
    expect(hooks).toHaveLength(6);
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
    expect(podHooks.map((h) => h.name)).toEqual(['mutate-pods-annotated.kernelchaos.dev', 'mutate-pods-namespace.kernelchaos.dev']);
  });

  it('KernelChaos and KernelChaosPolicy are validated in every namespace; a KernelChaos being deleted is never sent (its finalizer cannot wedge)', () => {
    for (const h of allWebhooks().filter((x) => !x.rules.some((r) => r.resources.includes('pods')))) {
      expect(h.namespaceSelector, h.name).toBeUndefined();
      expect(h.objectSelector, h.name).toBeUndefined();
      const kc = h.rules.some((r) => r.resources.includes('kernelchaos'));
      expect(h.matchConditions, h.name).toEqual(kc ? [{ name: 'not-being-deleted', expression: '!has(object.metadata.deletionTimestamp)' }] : undefined);
    }
  });

  it('the apiserver calls the pod injector only for opted-in pods: annotation (matchConditions) or enabled namespace, never both, never kube-system, disabled namespaces or kernelchaos itself', () => {
    const hook = (name: string) => allWebhooks().find((h) => h.name === name) as Webhook;
    const annotated = hook('mutate-pods-annotated.kernelchaos.dev');
    const byNamespace = hook('mutate-pods-namespace.kernelchaos.dev');
    expect(annotated.matchConditions).toEqual([
      {
        name: 'opted-in-by-annotation',
        expression: `has(object.metadata.annotations) && '${INJECT_ANNOTATION}' in object.metadata.annotations && object.metadata.annotations['${INJECT_ANNOTATION}'] == 'true'`,
      },
    ]);
    expect(annotated.namespaceSelector?.matchExpressions).toEqual([
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] },
      { key: INJECTION_NAMESPACE_LABEL, operator: 'NotIn', values: ['enabled', 'disabled'] },
    ]);
    expect(byNamespace.matchConditions).toBeUndefined();
    expect(byNamespace.namespaceSelector?.matchExpressions).toEqual([
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] },
      { key: INJECTION_NAMESPACE_LABEL, operator: 'In', values: ['enabled'] },
    ]);
    for (const h of [annotated, byNamespace]) {
      expect(h.objectSelector?.matchExpressions, h.name).toEqual([{ key: 'app.kubernetes.io/part-of', operator: 'NotIn', values: ['kernelchaos'] }]);
      // Only pod creation: subresources (pods/exec, pods/ephemeralcontainers, pods/status) never match.
      expect(h.rules, h.name).toEqual([{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'], scope: 'Namespaced' }]);
    }
    // The release namespace opts out by label, not by a hard-coded name in the webhooks.
    const ns = one('Namespace') as Obj & { metadata: { labels: Record<string, string> } };
    expect(ns.metadata.labels[INJECTION_NAMESPACE_LABEL]).toBe('disabled');
    for (const o of objects.filter((x) => x.kind === 'Deployment')) {
      const labels = (o as Obj & { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels;
      expect(labels['app.kubernetes.io/part-of'], o.metadata.name).toBe('kernelchaos');
    }
  });

  it('the CA bundle comes from cert-manager by default: the annotation names the Certificate that writes the Secret the webhook mounts', () => {
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const annotations = (one(kind).metadata as { annotations?: Record<string, string> }).annotations ?? {};
      expect(annotations['cert-manager.io/inject-ca-from'], kind).toBe('kernelchaos-system/kernelchaos-webhook');
    }
    const cert = byKind('Certificate').find((c) => c.metadata.name === 'kernelchaos-webhook') as Obj & { spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string } } };
    expect(cert.metadata.namespace).toBe('kernelchaos-system');
    expect(cert.spec.secretName).toBe('kernelchaos-webhook-tls');
    expect(cert.spec.dnsNames).toContain('kernelchaos-webhook.kernelchaos-system.svc');
    expect(byKind('Issuer').map((i) => i.metadata.name)).toContain(cert.spec.issuerRef.name);
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
    // The standalone profile has a Schedule CRD and no Workflow CRD: Workflows are registered only beside Chaos Mesh.
    expect(paths['/validate-schedule']?.resources).toEqual(['schedules']);
    expect(paths['/validate-workflow']).toBeUndefined();
  });

  it('call the Service that fronts the Deployment', () => {
    const service = admissionService() as Obj & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] } };
    for (const h of allWebhooks()) {
      expect(h.clientConfig.service.name).toBe(service.metadata.name);
      expect(h.clientConfig.service.namespace).toBe(service.metadata.namespace);
      expect(h.clientConfig.service.port).toBe(443);
    }
    expect(service.spec.ports[0]).toMatchObject({ port: 443, targetPort: 'https' });
  });
});

describe('Deployment', () => {
  const named = (name: string) => byKind('Deployment').find((d) => d.metadata.name === name) as Obj;
  const deployment = () =>
    named('kernelchaos-webhook') as Obj & {
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
    const service = admissionService() as Obj & { spec: { selector: Record<string, string> } };
    for (const [k, v] of Object.entries(service.spec.selector)) expect(d.spec.template.metadata.labels[k]).toBe(v);
  });

  it('every container: non-root, read-only root filesystem, no privilege escalation, no capabilities, resources', () => {
    for (const d of byKind('Deployment') as ReturnType<typeof deployment>[]) {
    expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    for (const c of d.spec.template.spec.containers) {
      expect(c.securityContext.allowPrivilegeEscalation, c.name).toBe(false);
      expect(c.securityContext.readOnlyRootFilesystem, c.name).toBe(true);
      expect(c.securityContext.capabilities.drop, c.name).toEqual(['ALL']);
      expect(c.resources?.requests?.cpu, c.name).toBeDefined();
      expect(c.resources?.limits?.memory, c.name).toBeDefined();
    }
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

  it('runs the webhook and the controller as separate Deployments, each under its own ServiceAccount', () => {
    const spec = (name: string) => (named(name) as ReturnType<typeof deployment>).spec.template.spec;
    expect(spec('kernelchaos-webhook').containers.map((c) => c.args[0])).toEqual(['webhook']);
    expect(spec('kernelchaos-controller').containers.map((c) => c.args[0])).toEqual(['controller']);
    expect(spec('kernelchaos-webhook').serviceAccountName).toBe('kernelchaos-webhook');
    expect(spec('kernelchaos-controller').serviceAccountName).toBe('kernelchaos-controller');
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
    expect([...k.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml' && f !== 'webhook-configurations.yaml' && f !== 'cert-manager.yaml').sort());
    expect(readFileSync(join(repo, 'certs-scripts/install-secrets.sh'), 'utf8')).toMatch(/inject-ca-bundle "\$\{keep\[@\]\}" --ca "\$dir\/ca\/ca.crt" -f "\$configs"/);
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
