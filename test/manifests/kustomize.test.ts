// Every install profile under manifests/overlays/ (and manifests/ itself) renders with
// `kubectl kustomize` into a complete install: the kinds an install needs, one namespace, the images
// of this version, and nothing that points at an object the profile does not create (Secrets come
// from `kernelchaos certs ensure-secrets` where the profile runs it). KUBECTL=path picks the kubectl
// (e.g. Debian's 1.20 with kustomize 2.0, which the profiles also support).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { INSTALL_SECRETS } from '../../src/tls/cluster-certs.js';

const repo = resolve(import.meta.dirname, '../..');
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const kubectl = spawnSync(KUBECTL, ['version', '--client'], { encoding: 'utf8' });
const haveKubectl = kubectl.error === undefined && kubectl.status === 0;
const overlaysDir = join(repo, 'manifests/overlays');
const profiles = ['manifests', ...readdirSync(overlaysDir).filter((d) => existsSync(join(overlaysDir, d, 'kustomization.yaml'))).map((d) => `manifests/overlays/${d}`)];

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };

function render(dir: string): Obj[] {
  const text = execFileSync(KUBECTL, ['kustomize', join(repo, dir)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

interface PodSpec {
  serviceAccountName?: string;
  containers: { image: string }[];
  initContainers?: { image: string }[];
  volumes?: { secret?: { secretName: string } }[];
}

function podSpecs(objects: Obj[]): { owner: string; spec: PodSpec }[] {
  return objects.flatMap((o) => {
    const spec = o.spec as { template?: { spec: PodSpec }; jobTemplate?: { spec: { template: { spec: PodSpec } } } } | undefined;
    const pod = spec?.template?.spec ?? spec?.jobTemplate?.spec.template.spec;
    return pod ? [{ owner: `${o.kind}/${o.metadata.name}`, spec: pod }] : [];
  });
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);

describe.skipIf(!haveKubectl)('install profiles (kubectl kustomize)', () => {
  it('has the standalone profile, and manifests/ renders it', () => {
    expect(profiles).toContain('manifests/overlays/standalone');
    expect(render('manifests')).toEqual(render('manifests/overlays/standalone'));
  });

  for (const profile of profiles) {
    it(`${profile}: a complete install in one namespace with this version's images`, () => {
      const objects = render(profile);
      const kinds = new Set(objects.map((o) => o.kind));
      for (const k of ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Service', 'Deployment', 'DaemonSet', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'CustomResourceDefinition']) {
        expect(kinds.has(k), `${profile} renders a ${k}`).toBe(true);
      }
      const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name);
      expect(crds).toContain('kernelchaospolicies.kernelchaos.dev');

      const namespaces = objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name);
      expect(namespaces).toHaveLength(1);
      const ns = namespaces[0] as string;
      for (const o of objects) {
        if (!CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(ns);
      }
      // Every webhook calls a Service of the profile.
      const services = new Set(objects.filter((o) => o.kind === 'Service').map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        for (const o of objects.filter((x) => x.kind === kind)) {
          for (const w of o.webhooks as { name: string; clientConfig: { service: { name: string; namespace: string }; caBundle?: string } }[]) {
            expect(services.has(`${w.clientConfig.service.namespace}/${w.clientConfig.service.name}`), w.name).toBe(true);
            // Filled in the cluster; a value here would be reset on every apply.
            expect(w.clientConfig.caBundle, w.name).toBeUndefined();
          }
        }
      }

      const accounts = new Set(objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name));
      const pods = podSpecs(objects);
      expect(pods.length).toBeGreaterThanOrEqual(2);
      for (const { owner, spec } of pods) {
        for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
          expect(c.image, owner).toMatch(new RegExp(`^ghcr\\.io/kernelchaos/kernelchaos(-companion)?:${version.replace(/\./g, '\\.')}$`));
        }
        if (spec.serviceAccountName) expect(accounts.has(spec.serviceAccountName), `${owner} service account`).toBe(true);
      }

      // The certificate Job, where the profile has one, creates every Secret the pods mount.
      const jobs = pods.filter((p) => p.owner.startsWith('Job/'));
      if (jobs.some((j) => j.spec.containers.some((c) => (c as { args?: string[] }).args?.join(' ') === 'certs ensure-secrets'))) {
        const made = new Set(INSTALL_SECRETS.map((s) => s.name));
        for (const { owner, spec } of pods) {
          for (const v of spec.volumes ?? []) if (v.secret) expect(made.has(v.secret.secretName), `${owner} mounts ${v.secret.secretName}`).toBe(true);
        }
      }
    });
  }

  it('standalone: our CRDs (KernelChaos, Schedule, policy) and the certificate Job and CronJob', () => {
    const objects = render('manifests/overlays/standalone');
    expect(objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name).sort()).toEqual(['kernelchaos.chaos-mesh.org', 'kernelchaospolicies.kernelchaos.dev', 'schedules.chaos-mesh.org']);
    expect(webhookPaths(objects)).toEqual(['/mutate-kernelchaos', '/mutate-pods', '/mutate-pods', '/validate-kernelchaos', '/validate-kernelchaospolicy', '/validate-schedule']);
    expect(objects.filter((o) => o.kind === 'Job' || o.kind === 'CronJob').map((o) => o.kind).sort()).toEqual(['CronJob', 'Job']);
    expect(objects.find((o) => o.kind === 'Namespace')?.metadata.name).toBe('kernelchaos-system');
  });
});

function webhookPaths(objects: Obj[]): string[] {
  return objects
    .filter((o) => o.kind === 'MutatingWebhookConfiguration' || o.kind === 'ValidatingWebhookConfiguration')
    .flatMap((o) => (o.webhooks as { clientConfig: { service: { path: string } } }[]).map((w) => w.clientConfig.service.path))
    .sort();
}

function args(objects: Obj[], deployment: string): string[] {
  const d = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === deployment) as { spec: { template: { spec: { containers: { args?: string[] }[] } } } } | undefined;
  return d?.spec.template.spec.containers[0]?.args ?? [];
}

describe.skipIf(!haveKubectl)('the beside-Chaos-Mesh profile (kubectl kustomize)', () => {
  it("leaves Chaos Mesh's KernelChaos and Schedule CRDs alone, insists on its profile, and checks Schedules and Workflows that carry KernelChaos", () => {
    const objects = render('manifests/overlays/with-chaos-mesh');
    expect(objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name)).toEqual(['kernelchaospolicies.kernelchaos.dev']);
    for (const d of ['kernelchaos-webhook', 'kernelchaos-controller']) expect(args(objects, d), d).toContain('--crd-profile=chaos-mesh');
    expect(args(objects, 'kernelchaos-controller').some((a) => a.startsWith('--schedules'))).toBe(false);
    expect(webhookPaths(objects)).toEqual(['/mutate-kernelchaos', '/mutate-pods', '/mutate-pods', '/validate-kernelchaos', '/validate-kernelchaospolicy', '/validate-schedule', '/validate-workflow']);
    const validating = objects.find((o) => o.kind === 'ValidatingWebhookConfiguration') as unknown as { webhooks: { name: string; matchConditions?: { name: string }[] }[] };
    for (const name of ['validate-schedule.kernelchaos.dev', 'validate-workflow.kernelchaos.dev']) {
      expect(validating.webhooks.find((w) => w.name === name)?.matchConditions?.map((c) => c.name), name).toEqual(['carries-kernelchaos']);
    }
  });
});

describe.runIf(!haveKubectl)('install profiles without kubectl', () => {
  it.skip('kubectl is not installed: the profiles are rendered in CI, where .ci/run installs it', () => {});
});
