import { describe, expect, it } from 'vitest';
import { validateKernelChaos, validateKernelChaosPolicy, MAX_WARNING_LENGTH } from '../../src/api/validate.js';
import { applyKernelChaosDefaults } from '../../src/api/defaults.js';
import type { KernelChaos } from '../../src/api/types.js';
import { errorsOf, merge, messageAt, paths, seed, withSpec, type Json } from './helpers.js';

function valid(input: unknown) {
  const v = validateKernelChaos(input);
  if (!v.valid) throw new Error(`expected valid, got ${JSON.stringify(v.errors)}`);
  return v;
}

describe('validateKernelChaos: the seed and defaults', () => {
  it('accepts the seed example unchanged and parses its call chain', () => {
    const v = valid(seed());
    expect(v.parsed).toEqual({
      failtype: 0,
      callchain: [{ funcname: '__x64_sys_mount', parameters: [], predicate: null }],
      headers: [],
      probability: 0,
      times: 0,
    });
    // Omitted probability stays omitted (= every call); nothing else is invented.
    expect(v.chaos.spec.failKernRequest.probability).toBeUndefined();
    expect(v.chaos.spec.selector.namespaces).toEqual(['chaos-mount']);
  });

  it('defaults an empty or missing selector.namespaces to the object namespace', () => {
    expect(valid(withSpec({ selector: { namespaces: [] } })).chaos.spec.selector.namespaces).toEqual(['chaos-testing']);
    expect(valid(withSpec({ selector: { namespaces: undefined, labelSelectors: { app: 'web' } } })).chaos.spec.selector).toEqual({
      labelSelectors: { app: 'web' },
      namespaces: ['chaos-testing'],
    });
    // Without a namespace in the manifest (kubectl -n decides), nothing is invented.
    const noNs = merge(withSpec({ selector: { namespaces: [] } }), { metadata: { namespace: undefined } });
    expect(valid(noNs).chaos.spec.selector.namespaces).toEqual([]);
  });

  it('applyKernelChaosDefaults is pure', () => {
    const input = withSpec({ selector: { namespaces: undefined } }) as unknown as KernelChaos;
    const before = JSON.stringify(input);
    const out = applyKernelChaosDefaults(input);
    expect(JSON.stringify(input)).toBe(before);
    expect(out.spec.selector.namespaces).toEqual(['chaos-testing']);
    expect(applyKernelChaosDefaults(out)).toEqual(out);
  });

  it('reports every error at once with JSON paths', () => {
    const v = validateKernelChaos(
      withSpec({ mode: 'fixd', failKernRequest: { failtype: 5, probability: 101, times: -1 }, duration: 'soon' }),
    );
    expect(paths(v)).toEqual(
      expect.arrayContaining([
        'spec.mode',
        'spec.failKernRequest.failtype',
        'spec.failKernRequest.probability',
        'spec.failKernRequest.times',
        'spec.duration',
      ]),
    );
    expect(messageAt(v, 'spec.failKernRequest.probability')).toBe('must be 0..100 (a percent; omitted or 0 = every call), got 101');
  });
});

describe('failKernRequest rules', () => {
  it.each([0, 1, 2])('accepts failtype %i', (failtype) => {
    expect(valid(withSpec({ failKernRequest: { failtype } })).parsed.failtype).toBe(failtype);
  });
  it.each([
    [3, 'must be 0..2 (0 slab allocation, 1 page allocation, 2 block I/O), got 3'],
    [-1, 'must be 0..2'],
    [1.5, 'must be an integer, got 1.5'],
    ['0', 'must be an integer, got "0" (write the number without quotes: 0)'],
    [null, 'must be an integer, got null'],
  ])('rejects failtype %j', (failtype, message) => {
    expect(messageAt(validateKernelChaos(withSpec({ failKernRequest: { failtype } })), 'spec.failKernRequest.failtype')).toContain(message);
  });
  it('requires failtype', () => {
    const v = validateKernelChaos(withSpec({ failKernRequest: { failtype: undefined } }));
    expect(messageAt(v, 'spec.failKernRequest.failtype')).toBe('is required: 0 slab allocation, 1 page allocation, 2 block I/O');
  });

  it('accepts probability 0..100 and times >= 0, keeping 0 as "always" / "no limit"', () => {
    for (const probability of [0, 1, 50, 100]) {
      expect(valid(withSpec({ failKernRequest: { probability } })).parsed.probability).toBe(probability);
    }
    expect(valid(withSpec({ failKernRequest: { times: 0 } })).parsed.times).toBe(0);
    expect(valid(withSpec({ failKernRequest: { times: 3 } })).parsed.times).toBe(3);
  });
  it.each([
    [{ probability: 101 }, 'spec.failKernRequest.probability', 'must be 0..100 (a percent; omitted or 0 = every call), got 101'],
    [{ probability: -1 }, 'spec.failKernRequest.probability', 'must be 0..100'],
    [{ probability: 0.5 }, 'spec.failKernRequest.probability', 'probability is a percent: write 50 for 0.5'],
    [{ probability: '50%' }, 'spec.failKernRequest.probability', 'write the number without quotes or %: 50'],
    [{ times: -1 }, 'spec.failKernRequest.times', 'must be 0..4294967295 (the most faults; omitted or 0 = no limit), got -1'],
    [{ times: 2.5 }, 'spec.failKernRequest.times', 'must be an integer, got 2.5'],
  ])('rejects %j', (fkr, path, message) => {
    expect(messageAt(validateKernelChaos(withSpec({ failKernRequest: fkr })), path)).toContain(message);
  });

  it('accepts plain relative headers and warns that they are not needed', () => {
    const v = valid(withSpec({ failKernRequest: { headers: ['linux/mmzone.h', 'linux/blkdev.h', 'net/sock.h'] } }));
    expect(v.parsed.headers).toEqual(['linux/mmzone.h', 'linux/blkdev.h', 'net/sock.h']);
    expect(v.warnings.some((w) => w.includes('headers are not needed'))).toBe(true);
  });
  it.each([
    ['../../etc/passwd.h', "must not contain '.' or '..' path segments"],
    ['linux/../x.h', "'..'"],
    ['/usr/include/linux/fs.h', 'not an absolute path'],
    ['<linux/fs.h>', 'without quotes or angle brackets'],
    ['"linux/fs.h"', 'without quotes or angle brackets'],
    ['linux/fs.h\n#include <x.h>', 'line break'],
    ['linux/ fs.h', 'must not contain spaces'],
    ['', 'must not be empty'],
    ['linux/fs.c', 'ending in .h'],
    ['linux//fs.h', 'header path of letters'],
    ['linux\\fs.h', 'header path of letters'],
  ])('rejects header %j', (header, message) => {
    const v = validateKernelChaos(withSpec({ failKernRequest: { headers: ['linux/mmzone.h', header] } }));
    expect(messageAt(v, 'spec.failKernRequest.headers[1]')).toContain(message);
  });

  it('parses predicates and reports their errors at the frame path with the column', () => {
    const bananas = {
      funcname: 'd_alloc_parallel',
      parameters: 'struct dentry *parent, const struct qstr *name',
      predicate: 'STRNCMP(name->name, "bananas", 8)',
    };
    const ok = valid(withSpec({ failKernRequest: { callchain: [bananas] } }));
    expect(ok.parsed.callchain[0]?.predicate).toMatchObject({ kind: 'strcmp', literal: 'bananas', length: 8 });

    const v = validateKernelChaos(
      withSpec({
        failKernRequest: {
          callchain: [
            { funcname: '__x64_sys_mount' },
            { ...bananas, predicate: 'STRNCMP(name->name, "bananas", 8); system("x")' },
            { funcname: 'd_alloc_parallel', predicate: 'name->len == 7' },
            { funcname: 'ext4 mount', parameters: 'struct qstr name', predicate: 'name.len' },
          ],
        },
      }),
    );
    expect(messageAt(v, 'spec.failKernRequest.callchain[1].predicate')).toBe(
      "';' is not allowed: a predicate is one expression, not statements (column 33)",
    );
    expect(messageAt(v, 'spec.failKernRequest.callchain[2].predicate')).toContain("'name' is not declared: set parameters");
    expect(messageAt(v, 'spec.failKernRequest.callchain[3].funcname')).toContain('must be a C identifier');
    expect(messageAt(v, 'spec.failKernRequest.callchain[3].parameters')).toContain('struct parameters must be pointers');
    // A predicate over unreadable parameters is not reported a second time.
    expect(paths(v)).not.toContain('spec.failKernRequest.callchain[3].predicate');
  });

  it('gives line and column for errors in multi-line predicates', () => {
    const frame = { funcname: 'd_alloc_parallel', parameters: 'const struct qstr *name', predicate: 'STRNCMP(name->name, "x", 2)\n  && name->len = 1\n' };
    expect(messageAt(validateKernelChaos(withSpec({ failKernRequest: { callchain: [frame] } })), 'spec.failKernRequest.callchain[0].predicate')).toBe(
      "assignment '=' is not allowed: use '==' to compare (line 2, column 15)",
    );
  });

  it('requires funcname in each frame and rejects clones and injection sites', () => {
    const v = validateKernelChaos(
      withSpec({
        failKernRequest: {
          callchain: [{ predicate: 'true' }, { funcname: 'ext4_find_entry.constprop.0' }, { funcname: 'should_failslab' }, { funcname: '' }, { funcname: 'vfs_open' }],
        },
      }),
    );
    expect(messageAt(v, 'spec.failKernRequest.callchain[0].funcname')).toContain('is required except in the last frame');
    expect(messageAt(v, 'spec.failKernRequest.callchain[1].funcname')).toContain("use the original function 'ext4_find_entry'");
    expect(messageAt(v, 'spec.failKernRequest.callchain[2].funcname')).toContain('injection site itself');
    expect(messageAt(v, 'spec.failKernRequest.callchain[3].funcname')).toContain('is required except in the last frame');
  });

  it("accepts a last frame without funcname as a predicate on the site's own arguments (bpfki, inject.py)", () => {
    const bio = valid(withSpec({ failKernRequest: { failtype: 2, callchain: [{ parameters: 'struct bio *b', predicate: 'b->bi_iter.bi_sector == 128' }] } }));
    expect(bio.parsed.callchain).toEqual([]);
    expect(bio.parsed.site?.parameters.map((p) => p.name)).toEqual(['b']);
    // Parameters omitted: the site's own names.
    const slab = valid(withSpec({ failKernRequest: { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }, { predicate: 's->size > 64' }] } }));
    expect(slab.parsed.callchain.map((f) => f.funcname)).toEqual(['__x64_sys_mount']);
    expect(slab.parsed.site?.parameters.map((p) => p.name)).toEqual(['s', 'gfpflags']);
  });

  it("refuses site parameters that are not the site's, and predicates outside the subset with the accepted form", () => {
    const wrongType = validateKernelChaos(withSpec({ failKernRequest: { failtype: 2, callchain: [{ parameters: 'struct page *p', predicate: 'p != 0' }] } }));
    expect(messageAt(wrongType, 'spec.failKernRequest.callchain[0].parameters')).toContain('must match the injection site int should_fail_bio(struct bio *bio)');
    const tooMany = validateKernelChaos(withSpec({ failKernRequest: { failtype: 1, callchain: [{ parameters: 'gfp_t g, unsigned int o, int x', predicate: 'x' }] } }));
    expect(messageAt(tooMany, 'spec.failKernRequest.callchain[0].parameters')).toContain('parameter 3 does not exist');
    for (const [predicate, what] of [
      ['({ int d = 1; d; }) && bio->bi_iter.bi_sector == 128', 'statement expressions'],
      ['(void *)bio != 0', 'casts are not allowed'],
      ['MKDEV(254, 16) == 1', "calling 'MKDEV' is not allowed"],
    ] as const) {
      const v = validateKernelChaos(withSpec({ failKernRequest: { failtype: 2, callchain: [{ parameters: 'struct bio *bio', predicate }] } }));
      const m = messageAt(v, 'spec.failKernRequest.callchain[0].predicate');
      expect(m).toContain(what);
      expect(m).toContain('predicate: "bio->bi_iter.bi_sector == 128"');
    }
  });

  it('limits the call chain to what the generator can track', () => {
    const callchain = Array.from({ length: 17 }, () => ({ funcname: 'f' }));
    expect(messageAt(validateKernelChaos(withSpec({ failKernRequest: { callchain } })), 'spec.failKernRequest.callchain')).toBe(
      'must have at most 16 frames, got 17',
    );
    expect(valid(withSpec({ failKernRequest: { callchain: callchain.slice(1) } })).parsed.callchain).toHaveLength(16);
  });
});

describe('mode and value', () => {
  it.each([
    ['one', undefined],
    ['all', undefined],
    ['fixed', 1],
    ['fixed', '3'],
    ['fixed-percent', '50'],
    ['fixed-percent', 100],
    ['random-max-percent', 1],
    ['random-max-percent', '100'],
  ])('accepts mode %s with value %j', (mode, value) => {
    expect(valid(withSpec({ mode, value })).chaos.spec.mode).toBe(mode);
  });
  it.each([
    ['fixed', undefined, 'is required with mode fixed: the number of pods to target (>= 1)'],
    ['fixed', '', 'is required with mode fixed'],
    ['fixed', 0, 'must be >= 1 with mode fixed (the number of pods to target), got 0'],
    ['fixed', '-2', 'must be >= 1'],
    ['fixed-percent', 101, 'must be 1..100 with mode fixed-percent (the percent of selected pods to target), got 101'],
    ['fixed-percent', '0', 'must be 1..100'],
    ['random-max-percent', '50%', 'must be a whole number (without the % sign) with mode random-max-percent'],
    ['random-max-percent', 'half', 'must be a whole number'],
    ['fixed', 1.5, 'must be a string or an integer, got 1.5'],
    ['fixed', true, 'must be a string or an integer, got true'],
  ])('rejects mode %s with value %j', (mode, value, message) => {
    expect(messageAt(validateKernelChaos(withSpec({ mode, value })), 'spec.value')).toContain(message);
  });
  it('rejects unknown modes with a suggestion and requires mode', () => {
    expect(messageAt(validateKernelChaos(withSpec({ mode: 'Fixed' })), 'spec.mode')).toBe(
      'must be one of one, all, fixed, fixed-percent, random-max-percent, got "Fixed" (did you mean fixed?)',
    );
    expect(messageAt(validateKernelChaos(withSpec({ mode: undefined })), 'spec.mode')).toContain('is required');
  });
  it('warns that value is ignored with one and all', () => {
    expect(valid(withSpec({ mode: 'all', value: '2' })).warnings).toContain('spec.value is ignored with mode all');
  });
});

describe('selector', () => {
  it('accepts every selector kind', () => {
    valid(
      withSpec({
        selector: {
          namespaces: ['a', 'b-2'],
          labelSelectors: { app: 'web', 'app.kubernetes.io/name': 'x' },
          expressionSelectors: [
            { key: 'tier', operator: 'In', values: ['a', 'b'] },
            { key: 'tier', operator: 'NotIn', values: ['c'] },
            { key: 'canary', operator: 'Exists' },
            { key: 'legacy', operator: 'DoesNotExist', values: [] },
          ],
          annotationSelectors: { 'kernelchaos.dev/inject': 'true' },
          fieldSelectors: { 'spec.nodeName': 'node-1', 'status.phase!=': 'Failed' },
          nodes: ['node-1'],
          nodeSelectors: { 'kubernetes.io/os': 'linux' },
          pods: { a: ['web-0', 'web-1'] },
          podPhaseSelectors: ['Running', 'Pending', 'Succeeded', 'Failed', 'Unknown'],
        },
      }),
    );
  });
  it('is required', () => {
    expect(messageAt(validateKernelChaos(withSpec({ selector: undefined })), 'spec.selector')).toContain('is required');
  });
  it('checks expression operators and their values', () => {
    const v = validateKernelChaos(
      withSpec({
        selector: {
          expressionSelectors: [
            { key: 'a', operator: 'In' },
            { key: 'a', operator: 'NotIn', values: [] },
            { key: 'a', operator: 'Exists', values: ['x'] },
            { key: 'a', operator: 'DoesNotExist', values: ['x'] },
            { key: 'a', operator: 'in', values: ['x'] },
            { key: 'a', operator: 'Equals', values: ['x'] },
          ],
        },
      }),
    );
    expect(messageAt(v, 'spec.selector.expressionSelectors[0].values')).toBe('must list at least one value with operator In');
    expect(messageAt(v, 'spec.selector.expressionSelectors[1].values')).toBe('must list at least one value with operator NotIn');
    expect(messageAt(v, 'spec.selector.expressionSelectors[2].values')).toContain('must be empty with operator Exists');
    expect(messageAt(v, 'spec.selector.expressionSelectors[3].values')).toContain('must be empty with operator DoesNotExist');
    expect(messageAt(v, 'spec.selector.expressionSelectors[4].operator')).toBe(
      'must be one of In, NotIn, Exists, DoesNotExist, got "in" (did you mean In?)',
    );
    expect(messageAt(v, 'spec.selector.expressionSelectors[5].operator')).toContain('must be one of In, NotIn, Exists, DoesNotExist');
  });
  it('checks pod phases as Kubernetes defines them', () => {
    const v = validateKernelChaos(withSpec({ selector: { podPhaseSelectors: ['Running', 'running', 'Terminated'] } }));
    expect(messageAt(v, 'spec.selector.podPhaseSelectors[1]')).toBe(
      'must be one of Pending, Running, Succeeded, Failed, Unknown, got "running" (did you mean Running?)',
    );
    expect(messageAt(v, 'spec.selector.podPhaseSelectors[2]')).toContain('got "Terminated"');
    expect(paths(v)).not.toContain('spec.selector.podPhaseSelectors[0]');
  });
  it('checks Kubernetes names, label keys and values, and field selectors', () => {
    const v = validateKernelChaos(
      withSpec({
        selector: {
          namespaces: ['Chaos_Mount'],
          labelSelectors: { 'bad key!': 'x', app: 'has space' },
          nodes: ['Node_1'],
          pods: { NS: ['web-0'], ok: ['Web 0'] },
          fieldSelectors: { 'spec.nodename': 'n' },
        },
        containerNames: ['Main'],
      }),
    );
    expect(messageAt(v, 'spec.selector.namespaces[0]')).toContain('namespace must be lowercase letters');
    expect(messageAt(v, 'spec.selector.labelSelectors["bad key!"]')).toContain('label key name must be');
    expect(messageAt(v, 'spec.selector.labelSelectors.app')).toContain('label value must be');
    expect(messageAt(v, 'spec.selector.nodes[0]')).toContain('node name');
    expect(messageAt(v, 'spec.selector.pods.NS')).toContain('the key is a namespace');
    expect(messageAt(v, 'spec.selector.pods.ok[0]')).toContain('pod name');
    expect(messageAt(v, 'spec.selector.fieldSelectors["spec.nodename"]')).toContain('pods cannot be selected by "spec.nodename"');
    expect(messageAt(v, 'spec.containerNames[0]')).toContain('container name');
  });
  it('tells the seed-document typo selector.namespace to use namespaces', () => {
    const v = validateKernelChaos(withSpec({ selector: { namespaces: undefined, namespace: 'chaos-mount' } }));
    expect(messageAt(v, 'spec.selector.namespace')).toBe('unknown field: use namespaces, a list: namespaces: [my-namespace]');
  });
  it('explains YAML type slips: unquoted numbers in string maps, a map where a list belongs', () => {
    const v = validateKernelChaos(withSpec({ selector: { labelSelectors: { version: 1, canary: true } }, failKernRequest: { callchain: { funcname: 'f' } } }));
    expect(messageAt(v, 'spec.selector.labelSelectors.version')).toBe('must be a string, got 1 (quote it: "1")');
    expect(messageAt(v, 'spec.selector.labelSelectors.canary')).toBe('must be a string, got true (quote it: "true")');
    expect(messageAt(v, 'spec.failKernRequest.callchain')).toBe('must be a list, got an object (write a list: start the entry with "- ")');
  });
  it('explains that namespaces is a list when given a string', () => {
    expect(messageAt(validateKernelChaos(withSpec({ selector: { namespaces: 'chaos-mount' } })), 'spec.selector.namespaces')).toBe(
      'must be a list, got "chaos-mount" (write a list: ["chaos-mount"])',
    );
  });
});

describe('duration and scheduler', () => {
  it.each(['90s', '1m30s', '1.5h', '500ms', '2h45m'])('accepts duration %s with a scheduler', (duration) => {
    valid(withSpec({ duration, scheduler: { cron: '@every 2h' } }));
  });
  it.each([
    ['90', 'must be a Go duration'],
    ['1 minute', 'must be a Go duration'],
    ['P1D', 'must be a Go duration'],
    ['-5m', 'must not be negative'],
  ])('rejects duration %j', (duration, message) => {
    expect(messageAt(validateKernelChaos(withSpec({ duration, scheduler: { cron: '@hourly' } })), 'spec.duration')).toContain(message);
  });
  it('requires scheduler and duration together', () => {
    expect(messageAt(validateKernelChaos(withSpec({ scheduler: { cron: '@hourly' } })), 'spec.duration')).toContain(
      'is required with spec.scheduler',
    );
  });
  it('accepts duration alone (Chaos Mesh 2.x: one run), "" as no duration, and 0s with a warning', () => {
    expect(valid(withSpec({ duration: '30s' })).warnings).toEqual([]);
    expect(valid(withSpec({ duration: '' })).warnings).toEqual([
      'every matching call fails until the experiment is deleted: set spec.failKernRequest.times or spec.duration',
    ]);
    expect(valid(withSpec({ duration: '0s', failKernRequest: { times: 1 } })).warnings).toEqual(['spec.duration is 0s: the experiment ends as soon as it starts']);
    expect(valid(withSpec({ duration: '0' })).warnings).toContain('spec.duration is 0s: the experiment ends as soon as it starts');
  });
  it.each(['*/5 * * * *', '0 9 * * MON-FRI', '@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually', '@every 1m30s', '0 0 1,15 * ?', 'CRON_TZ=Europe/Berlin 0 9 * * *'])(
    'accepts cron %j',
    (cron) => {
      valid(withSpec({ duration: '30s', scheduler: { cron } }));
    },
  );
  it.each([
    ['* * * *', 'must have 5 fields'],
    ['0 * * * * *', 'must have 5 fields'],
    ['61 * * * *', 'minute'],
    ['@fortnightly', "unknown descriptor '@fortnightly'"],
    ['@every', '@every needs a duration'],
    ['@every 5 minutes', '@every needs a Go duration'],
    ['@every 100ms', '@every must be at least 1s'],
    ['0 0 30 2 *', 'never runs'],
    ['0 0 L * *', 'last-day (L)'],
    ['0 0 * * 1#2', 'nth-weekday'],
    ['CRON_TZ=Mars/Olympus 0 * * * *', "unknown time zone 'Mars/Olympus'"],
    ['', 'must not be empty'],
  ])('rejects cron %j', (cron, message) => {
    expect(messageAt(validateKernelChaos(withSpec({ duration: '30s', scheduler: { cron } })), 'spec.scheduler.cron')).toContain(message);
  });
  it('requires scheduler.cron', () => {
    expect(messageAt(validateKernelChaos(withSpec({ duration: '30s', scheduler: {} })), 'spec.scheduler.cron')).toContain('is required');
  });
});

describe('unknown and invented fields', () => {
  it.each([
    [{ failKernRequst: {} }, 'spec.failKernRequst', 'unknown field: did you mean failKernRequest?'],
    [{ slector: {} }, 'spec.slector', 'did you mean selector?'],
    [{ containernames: ['a'] }, 'spec.containernames', 'did you mean containerNames?'],
    [{ action: 'fail' }, 'spec.action', 'KernelChaos has no action'],
    [{ errno: 12 }, 'spec.errno', 'the errno is fixed by failtype: 0 slab -> ENOMEM, 1 page -> ENOMEM, 2 bio -> EIO'],
    [{ failKernRequest: { errorno: 5 } }, 'spec.failKernRequest.errorno', 'the errno is fixed by failtype'],
    [{ failKernRequest: { slab: true } }, 'spec.failKernRequest.slab', 'spec.failKernRequest.failtype'],
    [{ ratio: 0.5 }, 'spec.ratio', 'use spec.failKernRequest.probability'],
    [{ failKernRequest: { percent: 50 } }, 'spec.failKernRequest.percent', 'use spec.failKernRequest.probability'],
    [{ count: 3 }, 'spec.count', 'use spec.failKernRequest.times'],
    [{ target: { pods: 'x' } }, 'spec.target', 'use spec.selector'],
    [{ probability: 50 }, 'spec.probability', 'probability belongs under spec.failKernRequest'],
    [{ failtype: 0 }, 'spec.failtype', 'failtype belongs under spec.failKernRequest'],
    [{ cron: '@hourly' }, 'spec.cron', 'cron belongs under spec.scheduler'],
    [{ namespace: 'x' }, 'spec.namespace', 'metadata.namespace'],
    [{ delay: '10ms' }, 'spec.delay', 'cannot delay them'],
    [{ containerName: 'app' }, 'spec.containerName', 'use spec.containerNames'],
    [{ failKernRequest: { callchain: [{ funcname: 'f', function: 'g' }] } }, 'spec.failKernRequest.callchain[0].function', 'use funcname'],
    [{ failKernRequest: { callchain: [{ funcname: 'f', args: 'int x' }] } }, 'spec.failKernRequest.callchain[0].args', 'use parameters'],
    [{ failKernRequest: { callchain: [{ funcname: 'f', condition: '1' }] } }, 'spec.failKernRequest.callchain[0].condition', 'use predicate'],
    [{ failKernRequest: { callchain: [{ funcname: 'f', funcName: 'g' }] } }, 'spec.failKernRequest.callchain[0].funcName', 'did you mean funcname?'],
    [{ failKernRequest: { callChain: [] } }, 'spec.failKernRequest.callChain', 'did you mean callchain?'],
    [{ selector: { namespaces: ['a'], labelSelector: { a: 'b' } } }, 'spec.selector.labelSelector', 'did you mean labelSelectors?'],
    [{ zzzz: 1 }, 'spec.zzzz', 'unknown field; the fields here are selector, mode, value'],
  ])('rejects %j', (spec, path, message) => {
    expect(messageAt(validateKernelChaos(withSpec(spec as Json)), path)).toContain(message);
  });
  it('rejects unknown top-level fields and misplaced spec fields', () => {
    const v = validateKernelChaos({ ...seed(), failKernRequest: {}, extra: 1 });
    expect(messageAt(v, 'failKernRequest')).toBe('unknown field here: failKernRequest belongs under spec');
    expect(messageAt(v, 'extra')).toContain('unknown field');
  });
  it('does not half-apply: a manifest with an invented field is rejected whole', () => {
    expect(validateKernelChaos(withSpec({ failKernRequest: { errno: 'EIO' } })).valid).toBe(false);
  });
  it('allows unknown metadata fields (owned by Kubernetes)', () => {
    valid(merge(seed(), { metadata: { managedFields: [{ manager: 'kubectl' }], ownerReferences: [] } }));
  });
});

describe('apiVersion, kind, metadata, remoteCluster', () => {
  it.each([
    [{ apiVersion: 'chaos-mesh.org/v1' }, 'apiVersion', 'must be chaos-mesh.org/v1alpha1, got "chaos-mesh.org/v1" (KernelChaos is served only as v1alpha1)'],
    [{ apiVersion: undefined }, 'apiVersion', 'is required: chaos-mesh.org/v1alpha1'],
    [{ kind: 'PodChaos' }, 'kind', 'must be KernelChaos, got "PodChaos"'],
    [{ kind: 'kernelchaos' }, 'kind', 'must be KernelChaos, got "kernelchaos" (did you mean KernelChaos?)'],
    [{ metadata: undefined }, 'metadata', 'is required'],
    [{ metadata: { namespace: 'x' } }, 'metadata.name', 'is required'],
    [{ metadata: { name: 'Bad_Name' } }, 'metadata.name', 'must be lowercase'],
    [{ spec: undefined }, 'spec', 'is required'],
    [{ spec: 'nope' }, 'spec', 'must be an object'],
  ])('rejects %j', (patch, path, message) => {
    const input = { ...seed(), ...(patch as Json) };
    for (const [k, v] of Object.entries(patch as Json)) if (v === undefined) delete input[k];
    expect(messageAt(validateKernelChaos(input), path)).toContain(message);
  });
  it('accepts generateName instead of name', () => {
    valid(merge(seed(), { metadata: { name: undefined, generateName: 'kc-' } }));
  });
  it('accepts remoteCluster with a warning that it is not supported', () => {
    expect(valid(withSpec({ remoteCluster: 'cluster-b' })).warnings).toContain(
      'spec.remoteCluster is not supported: the experiment runs in this cluster',
    );
  });
  it('accepts an object as the API server returns it (kubectl get -o yaml)', () => {
    const stored = merge(seed(), {
      metadata: {
        uid: '6f1c9a2e-2d5b-4c43-9d7e-0a1b2c3d4e5f',
        resourceVersion: '12345',
        generation: 1,
        creationTimestamp: '2026-01-01T00:00:00Z',
        finalizers: ['kernelchaos.dev/pod-labels'],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
        managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update' }],
      },
      status: {
        conditions: [{ type: 'Selected', status: 'True' }, { type: 'AllInjected', status: 'False', reason: 'waiting' }],
        experiment: {
          desiredPhase: 'Run',
          containerRecords: [
            { id: 'chaos-mount/web-0/app', selectorKey: '.', phase: 'Injected', injectedCount: 1, recoveredCount: 0, faultsInjected: 12 },
          ],
        },
      },
    });
    valid(stored);
    const badStatus = merge(stored, { status: { experiment: { desiredPhase: 'Running' } } });
    expect(messageAt(validateKernelChaos(badStatus), 'status.experiment.desiredPhase')).toContain('must be one of Run, Stop');
  });
  it('rejects non-objects at the top', () => {
    for (const input of [null, undefined, 42, 'KernelChaos', [seed()], true]) {
      const errors = errorsOf(validateKernelChaos(input));
      expect(errors).toHaveLength(1);
      expect(errors[0]?.path).toBe('');
      expect(errors[0]?.message).toMatch(/^expected a KernelChaos object/);
    }
  });
});

describe('warnings', () => {
  it('warns about unlimited always-on faults, headers and empty slab/page chains, each <= 120 chars', () => {
    const v = valid(withSpec({ failKernRequest: { failtype: 1, callchain: [], headers: ['linux/mmzone.h'] } }));
    expect(v.warnings).toEqual([
      "spec.failKernRequest.headers are not needed: predicates are compiled against the kernel's BTF types",
      'spec.failKernRequest.callchain is empty: every page allocation of the targeted containers can fail',
      'every matching call fails until the experiment is deleted: set spec.failKernRequest.times or spec.duration',
    ]);
    for (const w of v.warnings) expect(w.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);
  });
  it('does not warn when times, a partial probability or a duration limits the fault', () => {
    expect(valid(withSpec({ failKernRequest: { times: 5 } })).warnings).toEqual([]);
    expect(valid(withSpec({ failKernRequest: { probability: 10 } })).warnings).toEqual([]);
    expect(valid(withSpec({ duration: '30s', scheduler: { cron: '@hourly' } })).warnings).toEqual([]);
    expect(valid(withSpec({ failKernRequest: { probability: 100 } })).warnings).toHaveLength(1);
    // An empty chain for block I/O is a disk-wide fault of the pod's own bios; no slab/page warning.
    expect(valid(withSpec({ failKernRequest: { failtype: 2, callchain: [], times: 1 } })).warnings).toEqual([]);
  });
});

describe('validateKernelChaosPolicy', () => {
  const policy = (spec: Json): Json => ({
    apiVersion: 'kernelchaos.dev/v1alpha1',
    kind: 'KernelChaosPolicy',
    metadata: { name: 'limits', namespace: 'team-a' },
    spec,
  });
  it('accepts a full policy', () => {
    const v = validateKernelChaosPolicy(
      policy({
        allowedFailtypes: [0, 2],
        maxProbability: 50,
        maxDuration: '10m',
        maxTimes: 100,
        allowedFunctions: ['__x64_sys_mount', 'ext4_*'],
        requireCallchain: true,
        allowedModes: ['one', 'fixed'],
        allowedScheduleWindows: [{ days: ['Mon', 'Fri'], start: '09:00', end: '17:00' }],
      }),
    );
    expect(v.valid).toBe(true);
    if (v.valid) expect(v.policy.spec.maxTimes).toBe(100);
  });
  it('reports every error with its path', () => {
    const v = validateKernelChaosPolicy(
      policy({
        allowedFailtypes: [3],
        maxProbability: 150,
        maxDuration: 'forever',
        maxTimes: 0,
        allowedFunctions: ['ext4 mount', 'a*b'],
        allowedModes: ['some'],
        allowedScheduleWindows: [{ days: ['Monday'], start: '9:00', end: '24:00' }],
        maxProbabilty: 5,
      }),
    );
    expect(messageAt(v, 'spec.allowedFailtypes[0]')).toBe('must be 0..2, got 3');
    expect(messageAt(v, 'spec.maxProbability')).toBe('must be 0..100, got 150');
    expect(messageAt(v, 'spec.maxDuration')).toContain('must be a Go duration');
    expect(messageAt(v, 'spec.maxTimes')).toBe('must be >= 1, got 0');
    expect(messageAt(v, 'spec.allowedFunctions[0]')).toContain('kernel function name or a prefix');
    expect(messageAt(v, 'spec.allowedFunctions[1]')).toContain('kernel function name or a prefix');
    expect(messageAt(v, 'spec.allowedModes[0]')).toContain('must be one of one, all, fixed');
    expect(messageAt(v, 'spec.allowedScheduleWindows[0].days[0]')).toContain('did you mean Mon?');
    expect(messageAt(v, 'spec.allowedScheduleWindows[0].start')).toBe('must be a time HH:MM from 00:00 to 23:59, got "9:00"');
    expect(messageAt(v, 'spec.allowedScheduleWindows[0].end')).toContain('got "24:00"');
    expect(messageAt(v, 'spec.maxProbabilty')).toBe('unknown field: did you mean maxProbability?');
  });
  it('rejects a KernelChaos given as a policy', () => {
    expect(messageAt(validateKernelChaosPolicy(seed()), 'kind')).toContain('must be KernelChaosPolicy');
  });
});

describe('validation context', () => {
  const base = {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: { name: 'local-run', namespace: 'default' },
    spec: { mode: 'one', selector: {}, failKernRequest: { failtype: 0 }, duration: '5s' },
  };
  it('the cluster accepts duration without scheduler, as Chaos Mesh 2.x does', () => {
    expect(validateKernelChaos(base).valid).toBe(true);
  });
  it('a local run accepts duration alone (the scheduler has no meaning there), but still checks it', () => {
    expect(validateKernelChaos(base, { context: 'local' }).valid).toBe(true);
    const bad = validateKernelChaos({ ...base, spec: { ...base.spec, duration: '5 seconds' } }, { context: 'local' });
    expect(bad.valid).toBe(false);
    const noDuration = validateKernelChaos({ ...base, spec: { ...base.spec, duration: undefined, scheduler: { cron: '@every 1m' } } }, { context: 'local' });
    expect(noDuration.valid).toBe(false);
  });
});
