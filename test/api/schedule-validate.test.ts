// Schedule and Workflow validation with Chaos Mesh's rules, and that no hostile Schedule makes it throw.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateSchedule, validateWorkflow, type ChaosMeshVerdict } from '../../src/api/validate-chaos-mesh.js';
import { MAX_WARNING_LENGTH } from '../../src/api/validate.js';

const kernel = { mode: 'one', selector: { namespaces: ['apps'] }, failKernRequest: { failtype: 0, times: 3 }, duration: '30s' };
function schedule(spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'Schedule', metadata: { name: 's', namespace: 'apps' }, spec: { schedule: '@every 1m', type: 'KernelChaos', kernelChaos: kernel, ...spec } };
}
function paths(v: ChaosMeshVerdict): string[] {
  return v.valid === false ? v.errors.map((e) => `${e.path}: ${e.message}`) : [];
}

describe('validateSchedule', () => {
  it('accepts Chaos Mesh cron forms: 5 fields, 6 with seconds, descriptors, @every', () => {
    for (const cron of ['*/5 * * * *', '*/1 * * * * *', '@hourly', '@every 90s', 'CRON_TZ=Asia/Shanghai 0 9 * * *']) {
      expect(validateSchedule(schedule({ schedule: cron })).valid, cron).toBe(true);
    }
  });
  it('refuses a bad cron, historyLimit < 1, startingDeadlineSeconds <= 0, an unknown policy, naming each field', () => {
    const v = validateSchedule(schedule({ schedule: '* * *', historyLimit: 0, startingDeadlineSeconds: -1, concurrencyPolicy: 'Replace' }));
    expect(paths(v).map((p) => p.split(':')[0])).toEqual(['spec.concurrencyPolicy', 'spec.historyLimit', 'spec.schedule', 'spec.startingDeadlineSeconds']);
    expect(paths(v).find((p) => p.startsWith('spec.schedule'))).toContain('6 (seconds first)');
  });
  it('checks the embedded KernelChaos with every rule, at paths under spec.kernelChaos', () => {
    const v = validateSchedule(schedule({ kernelChaos: { ...kernel, mode: 'fixed', failKernRequest: { failtype: 9, probability: 101, callchain: [{ funcname: 'a b' }] } } }));
    const got = paths(v).map((p) => p.split(':')[0]);
    expect(got).toEqual(expect.arrayContaining([
      'spec.kernelChaos.failKernRequest.callchain[0].funcname',
      'spec.kernelChaos.failKernRequest.failtype',
      'spec.kernelChaos.failKernRequest.probability',
      'spec.kernelChaos.value',
    ]));
  });
  it('requires type and its chaos; a schedule of another kind is unchecked, never valid', () => {
    expect(paths(validateSchedule(schedule({ type: undefined })))).toEqual([expect.stringMatching(/^spec.type: is required/)]);
    expect(paths(validateSchedule(schedule({ kernelChaos: undefined })))).toEqual([expect.stringMatching(/^spec.kernelChaos: is required/)]);
    expect(validateSchedule(schedule({ type: 'PodChaos', podChaos: { action: 'pod-kill' } })).valid).toBe('unchecked');
    expect(paths(validateSchedule(schedule({ kernelChoas: {} })))).toEqual([expect.stringContaining('did you mean kernelChaos?')]);
  });
  it('warns that a child without duration blocks a Forbid schedule', () => {
    const v = validateSchedule(schedule({ kernelChaos: { ...kernel, duration: undefined } }));
    expect(v.valid).toBe(true);
    expect(v.warnings.some((w) => w.startsWith('spec.kernelChaos.duration is not set'))).toBe(true);
  });
  it('never throws and always answers well-formed on hostile input', () => {
    const value = fc.anything({ maxDepth: 4, withObjectString: true, withNullPrototype: true });
    fc.assert(
      fc.property(value, value, value, fc.constantFrom('schedule', 'type', 'kernelChaos', 'historyLimit', 'workflow', 'startingDeadlineSeconds'), (a, b, c, key) => {
        for (const input of [a, schedule({ [key]: b }), { kind: 'Schedule', spec: c }, schedule({ type: 'Workflow', workflow: { entry: 'x', templates: [b, c] } })]) {
          const v = validateSchedule(input);
          for (const w of v.warnings) expect(w.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);
          if (v.valid === false) for (const e of v.errors) expect(e.message.length).toBeGreaterThan(0);
          validateWorkflow(input);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('validateWorkflow', () => {
  const wf = (templates: unknown[], entry = 'entry') => ({ apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'Workflow', metadata: { name: 'w' }, spec: { entry, templates } });
  const k = { mode: 'all', selector: {}, failKernRequest: { failtype: 0, times: 1 } };
  it('accepts a KernelChaos template bounded by its deadline', () => {
    expect(validateWorkflow(wf([{ name: 'entry', templateType: 'Serial', children: ['kc'] }, { name: 'kc', templateType: 'KernelChaos', deadline: '20s', kernelChaos: k }])).valid).toBe(true);
  });
  it("refuses a duration inside a workflow's chaos (even \"\"), a missing entry, duplicates, unknown children", () => {
    const v = validateWorkflow(wf([
      { name: 'kc', templateType: 'KernelChaos', kernelChaos: { ...k, duration: '10s' } },
      { name: 'kc', templateType: 'KernelChaos', kernelChaos: { ...k, duration: '' } },
      { name: 'ser', templateType: 'Serial', children: ['nope'] },
      { name: 'Bad_Name', templateType: 'Suspend' },
    ], 'missing'));
    expect(paths(v).map((p) => p.split(':')[0])).toEqual([
      'spec.entry',
      'spec.templates',
      'spec.templates[0].kernelChaos.duration',
      'spec.templates[1].kernelChaos.duration',
      'spec.templates[2].children[0]',
      'spec.templates[3].deadline',
      'spec.templates[3].name',
    ]);
  });
  it('checks KernelChaos fields inside templates with their full paths', () => {
    const v = validateWorkflow(wf([{ name: 'entry', templateType: 'KernelChaos', kernelChaos: { ...k, failKernRequest: { failtype: 0, probability: 200 } } }]));
    expect(paths(v)).toEqual([expect.stringMatching(/^spec.templates\[0\].kernelChaos.failKernRequest.probability: /)]);
  });
});
