import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { V1ClusterRole, V1ClusterRoleBinding, V1DaemonSet, V1Service, V1ServiceAccount } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/companion.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'manifests', 'companion');

function docs(file: string): Array<Record<string, unknown>> {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
}
const ds = docs('daemonset.yaml')[0] as unknown as V1DaemonSet;
const pod = ds.spec?.template.spec;
const container = pod?.containers[0];
const mounts = new Map((container?.volumeMounts ?? []).map((m) => [m.name, m]));
const volumes = new Map((pod?.volumes ?? []).map((v) => [v.name, v]));
const arg = (flag: string): string | undefined => container?.args?.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

describe('manifests/companion', () => {
  it('runs privileged, with host pids, on every node', () => {
    expect(container?.securityContext?.privileged).toBe(true);
    expect(pod?.hostPID).toBe(true);
    expect(pod?.tolerations).toContainEqual({ operator: 'Exists' });
    expect(container?.image).toMatch(/kernelchaos-companion/);
    expect(container?.args?.[0]).toBe('companion');
  });

  it('mounts the host paths the engine and resolver need, where its flags point', () => {
    const host = (name: string): string | undefined => volumes.get(name)?.hostPath?.path;
    const cgroup = [...mounts.values()].find((m) => host(m.name) === '/sys/fs/cgroup');
    expect(cgroup?.mountPath).toBe(arg('--cgroup-root'));
    const proc = [...mounts.values()].find((m) => host(m.name) === '/proc');
    expect(proc?.mountPath).toBe('/host/proc');
    expect(arg('--proc-root')).toBe('/host/proc');
    const btf = [...mounts.values()].find((m) => host(m.name) === '/sys/kernel/btf');
    expect(btf).toMatchObject({ mountPath: '/sys/kernel/btf', readOnly: true });
    // Links are owned by the process (nothing is pinned): no bpffs mount, and every host path is used.
    expect([...volumes.values()].map((v) => v.hostPath?.path).filter(Boolean).sort()).toEqual(['/proc', '/sys/fs/cgroup', '/sys/kernel/btf']);
    for (const v of volumes.values()) expect(mounts.has(v.name), v.name).toBe(true);
  });

  it('schedules on real platforms: privileged Pod Security, a quota for its priority class, tested architectures only', () => {
    const ns = parseAllDocuments(readFileSync(join(ROOT, 'manifests', 'webhook', 'namespace.yaml'), 'utf8'))[0]?.toJS() as { metadata: { name: string; labels: Record<string, string> } };
    expect(ds.metadata?.namespace).toBe(ns.metadata.name);
    for (const mode of ['enforce', 'audit', 'warn']) expect(ns.metadata.labels[`pod-security.kubernetes.io/${mode}`]).toBe('privileged');
    expect(pod?.priorityClassName).toBe('system-node-critical');
    const quota = docs('resourcequota.yaml')[0] as { metadata: { namespace: string }; spec: { scopeSelector: { matchExpressions: Array<{ scopeName: string; operator: string; values: string[] }> } } };
    expect(quota.metadata.namespace).toBe(ns.metadata.name);
    expect(quota.spec.scopeSelector.matchExpressions).toEqual([{ scopeName: 'PriorityClass', operator: 'In', values: ['system-node-critical'] }]);
    const terms = pod?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
    expect(terms).toHaveLength(1);
    expect(terms[0]?.matchExpressions).toContainEqual({ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] });
    expect(terms[0]?.matchExpressions).toContainEqual({ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] });
    expect(container?.env?.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
  });

  it('gets its node name from the downward API and its mTLS material from the companion Secret', () => {
    expect(container?.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
    const tls = [...volumes.values()].find((v) => v.secret?.secretName === 'kernelchaos-companion-tls');
    expect(tls).toBeDefined();
    const dir = mounts.get(tls?.name ?? '')?.mountPath;
    expect(arg('--tls-cert')).toBe(`${dir}/tls.crt`);
    expect(arg('--tls-key')).toBe(`${dir}/tls.key`);
    expect(arg('--tls-ca')).toBe(`${dir}/ca.crt`);
  });

  it('passes only flags that `kernelchaos companion` accepts, and keeps bpfki off', () => {
    const parsed = parseArgs(container?.args?.slice(1) ?? [], { NODE_NAME: 'n1' });
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run') return;
    expect(parsed.config).toMatchObject({ node: 'n1', source: { kind: 'kubernetes' }, cgroupRoot: '/host/sys/fs/cgroup', procRoot: '/host/proc' });
    expect(parsed.config.bpfkiPort).toBeUndefined();
    expect(container?.ports?.find((p) => p.name === 'grpc')?.containerPort).toBe(parsed.config.grpc?.port);
    expect(readFileSync(join(DIR, 'daemonset.yaml'), 'utf8')).toMatch(/bpfki service is OFF/);
  });

  it('grants list/watch of pods, KernelChaos, namespaces and policies (the admission gate) and Event creation; never the status (test/manifests/rbac.test.ts checks every verb against the code)', () => {
    const [role, binding] = docs('rbac.yaml') as unknown as [V1ClusterRole, V1ClusterRoleBinding];
    const rules = (role.rules ?? []).flatMap((r) => (r.resources ?? []).map((res) => [`${r.apiGroups?.[0] ?? ''}/${res}`, [...r.verbs].sort().join(',')]));
    expect(Object.fromEntries(rules)).toEqual({
      '/pods': 'list,watch',
      'chaos-mesh.org/kernelchaos': 'list,watch',
      '/namespaces': 'list,watch',
      'kernelchaos.dev/kernelchaospolicies': 'list,watch',
      '/events': 'create',
    });
    const sa = docs('serviceaccount.yaml')[0] as unknown as V1ServiceAccount;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata?.name, namespace: sa.metadata?.namespace }]);
    expect(binding.roleRef.name).toBe(role.metadata?.name);
    expect(pod?.serviceAccountName).toBe(sa.metadata?.name);
  });

  it('exposes the gRPC port through a Service that selects the DaemonSet pods', () => {
    const svc = docs('service.yaml')[0] as unknown as V1Service;
    const labels = ds.spec?.template.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(svc.spec?.selector ?? {})) expect(labels[k]).toBe(v);
    expect(svc.spec?.ports?.[0]).toMatchObject({ port: 9443, targetPort: 'grpc' });
    const kustomization = docs('kustomization.yaml')[0] as { resources: string[] };
    expect(kustomization.resources.sort()).toEqual(['daemonset.yaml', 'metrics-service.yaml', 'rbac.yaml', 'resourcequota.yaml', 'service.yaml', 'serviceaccount.yaml']);
  });

  it('uses the Dockerfile target that carries clang and libbpf', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const stage = dockerfile.split(/^FROM /m).find((s) => / AS companion\b/.test(s.split('\n')[0] ?? ''));
    expect(stage).toMatch(/clang/);
    expect(stage).toMatch(/libbpf/);
    expect(dockerfile).toContain('COPY proto ./proto');
  });
});
