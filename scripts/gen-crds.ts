// `npm run gen:crds`: writes manifests/crds/*.yaml from src/api/schema.ts.
// `npm run gen:crds -- --check`: exits 1 (and names the stale files) when the committed CRDs differ.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrdFiles } from './crds.js';

export const CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'manifests', 'crds');

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const stale: string[] = [];
  mkdirSync(CRD_DIR, { recursive: true });
  for (const [name, text] of renderCrdFiles()) {
    const path = join(CRD_DIR, name);
    if (readOrEmpty(path) === text) continue;
    stale.push(path);
    if (!check) writeFileSync(path, text);
  }
  if (check && stale.length > 0) {
    console.error(`stale CRDs (run npm run gen:crds): ${stale.join(', ')}`);
    return 1;
  }
  console.log(check ? 'CRDs are up to date' : stale.length > 0 ? `wrote ${stale.join(', ')}` : 'CRDs already up to date');
  return 0;
}

process.exitCode = main(process.argv.slice(2));
