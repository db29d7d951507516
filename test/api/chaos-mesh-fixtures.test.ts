// Manifests from Chaos Mesh's docs, examples/, webhook tests and the bpfki/bcc examples
// (test/fixtures/chaos-mesh/SOURCES.md), each with Chaos Mesh's own admission verdict and ours.
// Where they differ, `why` is the reason the README lists.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseManifestText } from '../../src/api/manifests.js';
import { validateKernelChaos } from '../../src/api/validate.js';
import { validateSchedule, validateWorkflow } from '../../src/api/validate-chaos-mesh.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'chaos-mesh');

interface Case {
  chaosMesh: 'allowed' | 'denied';
  ours: 'valid' | 'invalid' | 'unchecked';
  /** For invalid: the field paths reported, all at once. */
  paths?: string[];
  why?: string;
}

const CASES: Record<string, Case> = {
  'website-docs-kernelchaos.yaml': { chaosMesh: 'allowed', ours: 'valid' },
  'composed-kernelchaos-duration-alone.yaml': { chaosMesh: 'allowed', ours: 'valid' },
  'composed-schedule-kernelchaos.yaml': { chaosMesh: 'allowed', ours: 'valid' },
  'composed-schedule-kernelchaos-seconds.yaml': { chaosMesh: 'allowed', ours: 'valid' },
  'composed-schedule-kernelchaos-bad.yaml': {
    chaosMesh: 'denied',
    ours: 'invalid',
    paths: ['spec.concurrencyPolicy', 'spec.historyLimit', 'spec.kernelChaos.failKernRequest.probability', 'spec.kernelChaos.value', 'spec.schedule', 'spec.startingDeadlineSeconds'],
  },
  'composed-workflow-kernelchaos.yaml': { chaosMesh: 'allowed', ours: 'valid' },
  'composed-workflow-kernelchaos-duration.yaml': { chaosMesh: 'denied', ours: 'invalid', paths: ['spec.templates[0].kernelChaos.duration'] },
  'cm-examples-schedule-podchaos.yaml': { chaosMesh: 'allowed', ours: 'unchecked', why: 'PodChaos is not ours to validate; never reported valid' },
  'website-docs-schedule-networkchaos.yaml': { chaosMesh: 'allowed', ours: 'unchecked', why: 'NetworkChaos is not ours to validate' },
  'cm-examples-workflow-serial.yaml': { chaosMesh: 'allowed', ours: 'unchecked', why: 'Stress/Network/PodChaos templates are not ours to validate' },
  'cm-examples-workflow-parallel.yaml': { chaosMesh: 'allowed', ours: 'unchecked', why: 'no KernelChaos template in it' },
  'bcc-inject-bio-sector.yaml': { chaosMesh: 'allowed', ours: 'valid' },
  'bpfki-fail-bio.yaml': {
    chaosMesh: 'allowed',
    ours: 'invalid',
    paths: ['spec.failKernRequest.callchain[0].predicate'],
    why: 'stricter on purpose: a GNU statement expression with casts and MKDEV is C we do not parse, and nothing unparsed reaches the compiler',
  },
};

function verdictOf(object: unknown): { ours: Case['ours']; paths: string[] } {
  const kind = (object as { kind?: unknown }).kind;
  const v = kind === 'Schedule' ? validateSchedule(object) : kind === 'Workflow' ? validateWorkflow(object) : validateKernelChaos(object);
  if (v.valid === 'unchecked') return { ours: 'unchecked', paths: [] };
  if (v.valid) return { ours: 'valid', paths: [] };
  return { ours: 'invalid', paths: [...new Set(v.errors.map((e) => e.path))].sort() };
}

describe("Chaos Mesh's own manifests get Chaos Mesh's verdict (or a listed difference)", () => {
  it('every fixture file has a case', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && !f.startsWith('cm-helm-crd-'));
    expect(files.sort()).toEqual(Object.keys(CASES).sort());
  });
  for (const [file, expected] of Object.entries(CASES)) {
    it(`${file}: Chaos Mesh ${expected.chaosMesh}, kernelchaos ${expected.ours}${expected.why ? ` (${expected.why})` : ''}`, () => {
      const docs = parseManifestText(readFileSync(join(DIR, file), 'utf8'), file);
      expect(docs).toHaveLength(1);
      const doc = docs[0];
      if (!doc?.ok) throw new Error(`${file} does not parse`);
      const got = verdictOf(doc.object);
      expect(got.ours).toBe(expected.ours);
      if (expected.ours === 'invalid') expect(got.paths).toEqual(expected.paths);
      // Agreement unless a reason is listed.
      if (!expected.why) expect(expected.ours === 'valid').toBe(expected.chaosMesh === 'allowed');
    });
  }
});
