// Validating 1,000 KernelChaos manifests from one multi-document YAML file, as
// `kernelchaos validate -f FILE` does, against the baseline of only YAML-parsing the same file.
// The target: well under a second for the 1,000. Prints medians of repeated runs.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseAllDocuments, stringify } from 'yaml';
import { validateKernelChaos } from '../src/api/validate.js';
import { parseManifestText } from '../src/api/manifests.js';

const MANIFESTS = 1000;
const WARMUP_RUNS = 3;
const MEASURED_RUNS = 15;
/** Every INVALID_EVERY-th manifest carries one mistake, so the error paths are measured too. */
const INVALID_EVERY = 10;
const TARGET_MS = 1000;

const examplesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples');

type Json = Record<string, unknown>;

function exampleManifests(): Json[] {
  const out: Json[] = [];
  for (const dir of ['chaos-mesh', 'bcc-inject', 'bpfki']) {
    for (const file of readdirSync(join(examplesDir, dir)).sort()) {
      for (const doc of parseAllDocuments(readFileSync(join(examplesDir, dir, file), 'utf8'))) {
        const value = doc.toJS() as Json;
        if (value.kind === 'KernelChaos') out.push(value);
      }
    }
  }
  if (out.length === 0) throw new Error(`no KernelChaos examples under ${examplesDir}`);
  return out;
}

/** Mistakes users make; each must yield an error, which the run checks. */
const MISTAKES: ((m: Json) => void)[] = [
  (m) => {
    const spec = m.spec as Json;
    spec.failKernRequst = spec.failKernRequest;
    delete spec.failKernRequest;
  },
  (m) => {
    ((m.spec as Json).failKernRequest as Json).probability = 101;
  },
  (m) => {
    ((m.spec as Json).failKernRequest as Json).callchain = [
      { funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: '({ name->len; }) == 7' },
    ];
  },
  (m) => {
    Object.assign(m.spec as Json, { duration: '30s', scheduler: { cron: '61 * * * *' } });
  },
  (m) => {
    Object.assign(m.spec as Json, { mode: 'fixed-percent', value: '150' });
  },
];

function corpus(): { text: string; invalid: number } {
  const examples = exampleManifests();
  const docs: string[] = [];
  let invalid = 0;
  for (let i = 0; i < MANIFESTS; i++) {
    const m = structuredClone(examples[i % examples.length]) as Json;
    const meta = m.metadata as Json;
    meta.name = `${String(meta.name)}-${i}`;
    ((m.spec as Json).failKernRequest as Json).probability = (i % 100) + 1;
    if (i % INVALID_EVERY === INVALID_EVERY - 1) {
      MISTAKES[invalid % MISTAKES.length]?.(m);
      invalid++;
    }
    docs.push(stringify(m));
  }
  return { text: docs.join('---\n'), invalid };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

interface Timed {
  /** Median of the measured runs. */
  ms: number;
  /** The very first run in this process, as a one-shot `kernelchaos validate` sees it. */
  coldMs: number;
  result: unknown;
}

/**
 * Runs the contenders round-robin (warm-ups first) so that drift on a shared machine (other
 * processes, GC, JIT tiers) hits all alike; returns each one's median time and last result.
 */
function measure(contenders: (() => unknown)[]): Timed[] {
  const results: unknown[] = contenders.map(() => undefined);
  const times: number[][] = contenders.map(() => []);
  const cold: number[] = contenders.map(() => Number.NaN);
  for (let round = 0; round < WARMUP_RUNS + MEASURED_RUNS; round++) {
    contenders.forEach((run, i) => {
      const t0 = performance.now();
      results[i] = run();
      const elapsed = performance.now() - t0;
      if (round === 0) cold[i] = elapsed;
      if (round >= WARMUP_RUNS) times[i]?.push(elapsed);
    });
  }
  return contenders.map((_, i) => ({ ms: median(times[i] ?? []), coldMs: cold[i] ?? Number.NaN, result: results[i] }));
}

const { text, invalid } = corpus();

/** The baseline: the yaml library alone, with its defaults, turning the file into JS values. */
function yamlOnly(): number {
  return parseAllDocuments(text).map((d) => d.toJS() as unknown).length;
}

/** What `kernelchaos validate -f FILE` does after reading the file. */
function parseAndValidate(): { documents: number; valid: number; rejected: number } {
  const documents = parseManifestText(text, 'bench.yaml');
  let valid = 0;
  let rejected = 0;
  for (const doc of documents) {
    if (doc.ok && validateKernelChaos(doc.object).valid) valid++;
    else rejected++;
  }
  return { documents: documents.length, valid, rejected };
}

/** Validation alone, on objects parsed once up front. */
const preParsed = parseManifestText(text, 'bench.yaml').map((d) => (d.ok ? d.object : null));
function validateOnly(): number {
  let valid = 0;
  for (const object of preParsed) if (validateKernelChaos(object).valid) valid++;
  return valid;
}

const [baseline, validation, full] = measure([yamlOnly, validateOnly, parseAndValidate]) as [Timed, Timed, Timed];

const { documents, valid, rejected } = full.result as ReturnType<typeof parseAndValidate>;
if (documents !== MANIFESTS || rejected !== invalid || valid !== MANIFESTS - invalid || validation.result !== valid) {
  console.error(`verdicts wrong: ${documents} documents, ${valid} valid, ${rejected} rejected; expected ${MANIFESTS - invalid} valid, ${invalid} rejected`);
  process.exitCode = 1;
}

const fmt = (n: number): string => n.toFixed(1);
console.log(`manifests:                         ${MANIFESTS} in one ${(text.length / 1024).toFixed(0)} KiB file (${invalid} invalid)`);
console.log(`YAML parse only (baseline):        ${fmt(baseline.ms)} ms  (${fmt((baseline.ms * 1000) / MANIFESTS)} µs/manifest)`);
console.log(`validate only (pre-parsed):        ${fmt(validation.ms)} ms  (${fmt((validation.ms * 1000) / MANIFESTS)} µs/manifest)`);
console.log(`parse + validate (kernelchaos):    ${fmt(full.ms)} ms  (${fmt((full.ms * 1000) / MANIFESTS)} µs/manifest)`);
console.log(`parse + validate, first (cold) run: ${fmt(full.coldMs)} ms (YAML only cold: ${fmt(baseline.coldMs)} ms)`);
console.log(`ratio vs YAML parse only:          ${(full.ms / baseline.ms).toFixed(2)}x`);
console.log(`target < ${TARGET_MS} ms for ${MANIFESTS}:          ${full.ms < TARGET_MS ? 'met' : 'MISSED'} (median of ${MEASURED_RUNS} runs after ${WARMUP_RUNS} warm-ups)`);
