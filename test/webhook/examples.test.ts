// Every example manifest a user might copy goes through the webhook as the apiserver would send it
// (kubectl apply: last-applied annotation, managedFields, null creationTimestamp): all admitted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import jsonpatch from 'fast-json-patch';
import { decodePatch, review, startTestWebhook, type TestWebhook } from './helpers.js';

const examples = resolve(import.meta.dirname, '../../examples');
type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> } };

function load(): { file: string; doc: Doc }[] {
  const out: { file: string; doc: Doc }[] = [];
  for (const sub of readdirSync(examples, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const f of readdirSync(join(examples, sub.name)).filter((n) => /\.ya?ml$/.test(n))) {
      for (const d of parseAllDocuments(readFileSync(join(examples, sub.name, f), 'utf8'))) {
        const doc = d.toJS() as Doc | null;
        if (doc && (doc.kind === 'KernelChaos' || doc.kind === 'KernelChaosPolicy')) out.push({ file: `${sub.name}/${f}`, doc });
      }
    }
  }
  return out;
}

/** What the apiserver puts into request.object for `kubectl apply -f` of `doc`. */
function asApplied(doc: Doc): Doc {
  const namespace = doc.metadata.namespace ?? 'default';
  return {
    ...doc,
    metadata: {
      ...doc.metadata,
      namespace,
      annotations: { ...doc.metadata.annotations, 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(doc) + '\n' },
      creationTimestamp: null,
      generation: 1,
      uid: '0f6a0a6e-8d0b-4a62-9a43-1b4a0c7f3f10',
      managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: doc.apiVersion, fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }],
    } as Doc['metadata'],
  };
}

let hook: TestWebhook;
beforeAll(async () => {
  hook = await startTestWebhook({ now: () => new Date('2026-11-25T10:30:00Z') });
});
afterAll(async () => hook.close());

describe('the examples/ manifests through the webhook', () => {
  const docs = load();

  it('finds the examples', () => {
    expect(docs.filter((d) => d.doc.kind === 'KernelChaos').length).toBeGreaterThanOrEqual(10);
    expect(docs.some((d) => d.doc.kind === 'KernelChaosPolicy')).toBe(true);
  });

  it('admits every KernelChaos example: defaulted by the mutating endpoint, then allowed by the validating one', async () => {
    for (const { file, doc } of docs.filter((d) => d.doc.kind === 'KernelChaos')) {
      const object = asApplied(doc);
      const base = {
        kind: { group: 'chaos-mesh.org', version: 'v1alpha1', kind: 'KernelChaos' },
        resource: { group: 'chaos-mesh.org', version: 'v1alpha1', resource: 'kernelchaos' },
        requestKind: { group: 'chaos-mesh.org', version: 'v1alpha1', kind: 'KernelChaos' },
        name: doc.metadata.name,
        namespace: object.metadata.namespace,
        userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
        options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions', fieldManager: 'kubectl-client-side-apply' },
        oldObject: null,
      };
      const mutated = await review(hook, '/mutate-kernelchaos', { ...base, object });
      expect(mutated.allowed, `${file}: ${mutated.status?.message}`).toBe(true);
      const defaulted = jsonpatch.applyPatch(structuredClone(object), decodePatch(mutated) as jsonpatch.Operation[]).newDocument;
      const validated = await review(hook, '/validate-kernelchaos', { ...base, object: defaulted });
      expect(validated.allowed, `${file}: ${validated.status?.message}`).toBe(true);
    }
  });

  it('admits every KernelChaosPolicy example', async () => {
    for (const { file, doc } of docs.filter((d) => d.doc.kind === 'KernelChaosPolicy')) {
      const r = await review(hook, '/validate-kernelchaospolicy', {
        resource: { group: 'kernelchaos.dev', version: 'v1alpha1', resource: 'kernelchaospolicies' },
        namespace: doc.metadata.namespace ?? 'default',
        object: asApplied(doc),
      });
      expect(r.allowed, `${file}: ${r.status?.message}`).toBe(true);
    }
  });
});
