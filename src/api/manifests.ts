// Reading manifests for `kernelchaos validate` and the manifest-directory cluster store: files,
// directories (recursively, *.yaml, *.yml, *.json, sorted) and stdin (`-`); multi-document YAML or
// JSON; a `kind: List` (what `kubectl get -o yaml` prints) is expanded into its items. Bad input
// becomes a document-level error with its line, never an exception.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { isRecord, parsePath } from './validation/paths.js';

export type ManifestDocument =
  | {
      ok: true;
      source: string;
      index: number;
      line: number;
      object: unknown;
      /** The 1-based line of a field path (`spec.failKernRequest.probability`), or of its nearest written parent. */
      locate?: (path: string) => number;
      /** 1-based column of the document's first character (1 for JSON). */
      column?: number;
      /** Line and 1-based column of a field path, as `locate` finds it. */
      position?: (path: string) => Position;
    }
  /** `read`: the source could not be read (the CLI exits 2); `parse`: not YAML/JSON (the manifest is invalid). */
  | { ok: false; source: string; index: number; line: number; error: 'read' | 'parse'; message: string };

export interface Position {
  line: number;
  column: number;
}

export interface ReadOptions {
  /** Where `-` reads from; process.stdin by default. */
  stdin?: AsyncIterable<string | Buffer>;
}

/** Larger sources are refused: a manifest file is kilobytes, the 1,000-manifest benchmark about 0.5 MB. */
export const MAX_SOURCE_BYTES = 32 * 1024 * 1024;
const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
/** YAML aliases expand; capping them defeats "billion laughs" documents. */
const MAX_ALIASES = 100;

export async function readManifestSources(sources: readonly string[], options: ReadOptions = {}): Promise<ManifestDocument[]> {
  const out: ManifestDocument[] = [];
  let stdinRead = false;
  for (const source of sources) {
    if (source === '-') {
      if (stdinRead) {
        out.push(readError('-', 'stdin can be read only once'));
        continue;
      }
      stdinRead = true;
      const text = await readStdin(options.stdin ?? process.stdin);
      out.push(...(typeof text === 'string' ? parseManifestText(text, '-') : [readError('-', text.message)]));
      continue;
    }
    const files = await expandSource(source);
    if (!Array.isArray(files)) {
      out.push(readError(source, files.message));
      continue;
    }
    for (const file of files) {
      const text = await readText(file);
      out.push(...(typeof text === 'string' ? parseManifestText(text, file) : [readError(file, text.message)]));
    }
  }
  return out;
}

/** Splits and parses one source's text. Pure; `source` only labels the documents. */
export function parseManifestText(raw: string, source: string): ManifestDocument[] {
  // Editors on Windows may save a byte-order mark, which JSON.parse refuses.
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  try {
    if (extname(source).toLowerCase() === '.json' || /^\s*[[{]/.test(text)) {
      const json = parseJson(text, source);
      if (json) return json;
    }
    return parseYaml(text, source);
  } catch (e) {
    // The YAML library can overflow the stack on absurd nesting; that is a parse error, not a crash.
    return [{ ok: false, source, index: 0, line: 1, error: 'parse', message: `cannot be parsed: ${errorText(e)}` }];
  }
}

/** JSON when it is JSON; null to fall back to YAML (a .yaml file may start with `{` flow style). */
function parseJson(text: string, source: string): ManifestDocument[] | null {
  try {
    return expandLists(JSON.parse(text) as unknown, source, 0, 1);
  } catch (e) {
    if (extname(source).toLowerCase() !== '.json') return null;
    // V8 quotes the whole input in some messages; keep only the reason.
    const message = errorText(e).replace(/, ".*" is not valid JSON$/s, '');
    const at = /position (\d+)/.exec(message);
    const line = at ? lineOf(text, Number(at[1])) : yamlErrorLine(text);
    return [{ ok: false, source, index: 0, line, error: 'parse', message: `invalid JSON: ${message}` }];
  }
}

function parseYaml(text: string, source: string): ManifestDocument[] {
  const nesting = nestingProblem(text);
  if (nesting) return [{ ok: false, source, index: 0, line: nesting.line, error: 'parse', message: nesting.message }];
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  // parseAllDocuments returns an EmptyStream for text without documents.
  const list = Array.isArray(docs) ? docs : [];
  const out: ManifestDocument[] = [];
  let index = 0;
  for (const doc of list) {
    const start = doc.contents?.range?.[0] ?? doc.range[0];
    const { line, col: column } = lineCounter.linePos(start);
    const first = doc.errors[0];
    if (first) {
      const at = first.pos[0];
      out.push({ ok: false, source, index, line: lineCounter.linePos(at).line, error: 'parse', message: `invalid YAML: ${firstLine(first.message)}` });
      index++;
      continue;
    }
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      out.push({ ok: false, source, index, line, error: 'parse', message: `invalid YAML: ${errorText(e)}` });
      index++;
      continue;
    }
    // `---` followed by nothing, or only comments, is not a document (kubectl skips these too).
    if (value === null || value === undefined) continue;
    const expanded = expandLists(value, source, index, line);
    if (expanded.length === 1 && expanded[0]?.ok) {
      const located = doc;
      const position = (path: string): Position => locatePosition(located, path, lineCounter) ?? { line, column };
      expanded[0] = { ...expanded[0], column, position, locate: (path) => position(path).line };
    }
    out.push(...expanded);
    index += expanded.length;
  }
  return out;
}

/** No manifest nests more than a few levels; an input nesting hundreds deep is refused unparsed. */
const MAX_FLOW_DEPTH = 100;
const MAX_INDENT = 256;
const MAX_SEQUENCE_INDICATORS = 50;

/**
 * The YAML parser recurses once per nesting level and V8 can abort the whole process (not throw)
 * when that happens near the stack limit, so depth is bounded here, in one linear scan, before
 * parsing. Quotes are ignored: that can only overcount, and 100 unbalanced brackets is no manifest.
 */
function nestingProblem(text: string): { line: number; message: string } | null {
  let depth = 0;
  let line = 1;
  let column = 0;
  let indicators = 0;
  let atIndent = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      column = 0;
      indicators = 0;
      atIndent = true;
      continue;
    }
    column++;
    if (atIndent) {
      if (c === 32) {
        if (column > MAX_INDENT) return { line, message: `line is indented more than ${MAX_INDENT} columns` };
        continue;
      }
      // `- - - x` nests one sequence per dash.
      if ((c === 45 || c === 63) && (text.charCodeAt(i + 1) === 32 || text.charCodeAt(i + 1) === 9)) {
        if (++indicators > MAX_SEQUENCE_INDICATORS) return { line, message: `nests more than ${MAX_SEQUENCE_INDICATORS} sequences on one line` };
        continue;
      }
      atIndent = false;
    }
    if (c === 91 || c === 123) {
      if (++depth > MAX_FLOW_DEPTH) return { line, message: `nests more than ${MAX_FLOW_DEPTH} levels of [ ] or { }` };
    } else if ((c === 93 || c === 125) && depth > 0) {
      depth--;
    }
  }
  return null;
}

/** Where `path` (or its deepest existing prefix) is written: a map key's position, a list item's. */
function locatePosition(doc: Document.Parsed, path: string, lineCounter: LineCounter): Position | undefined {
  let node: unknown = doc.contents;
  let at: Position | undefined = undefined;
  const positionOf = (offset: number): Position => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  for (const segment of parsePath(path)) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      const key = pair.key as { range?: [number, number, number] };
      if (key.range) at = positionOf(key.range[0]);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as { range?: [number, number, number] } | undefined;
      if (!item) break;
      if (item.range) at = positionOf(item.range[0]);
      node = item;
    } else {
      break;
    }
  }
  return at;
}

/** `kind: List` (kubectl get -o yaml) becomes its items; anything else is one document. */
function expandLists(value: unknown, source: string, index: number, line: number): ManifestDocument[] {
  if (isRecord(value) && value.kind === 'List' && Array.isArray(value.items)) {
    return value.items.map((object: unknown, i) => ({ ok: true as const, source, index: index + i, line, object }));
  }
  return [{ ok: true, source, index, line, object: value }];
}

async function expandSource(source: string): Promise<string[] | { message: string }> {
  let info;
  try {
    info = await stat(source);
  } catch (e) {
    return { message: `cannot read: ${errorText(e)}` };
  }
  if (info.isFile()) return [source];
  if (!info.isDirectory()) return { message: 'cannot read: not a file or directory' };
  const files: string[] = [];
  try {
    await walk(source, files);
  } catch (e) {
    return { message: `cannot read directory: ${errorText(e)}` };
  }
  if (files.length === 0) return { message: 'no .yaml, .yml or .json files in this directory' };
  return files.sort();
}

async function walk(dir: string, into: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    const path = join(dir, entry.name);
    // Symlinked directories are not followed (a link to `..` would loop); symlinked files are read.
    if (entry.isDirectory()) await walk(path, into);
    else if ((entry.isFile() || entry.isSymbolicLink()) && MANIFEST_EXTENSIONS.has(extname(entry.name).toLowerCase())) into.push(path);
  }
}

async function readText(file: string): Promise<string | { message: string }> {
  try {
    const info = await stat(file);
    if (!info.isFile()) return { message: 'cannot read: not a regular file' };
    if (info.size > MAX_SOURCE_BYTES) return { message: `too large: ${info.size} bytes, at most ${MAX_SOURCE_BYTES}` };
    return await readFile(file, 'utf8');
  } catch (e) {
    return { message: `cannot read: ${errorText(e)}` };
  }
}

async function readStdin(stream: AsyncIterable<string | Buffer>): Promise<string | { message: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buf.length;
      if (size > MAX_SOURCE_BYTES) return { message: `too large: more than ${MAX_SOURCE_BYTES} bytes` };
      chunks.push(buf);
    }
  } catch (e) {
    return { message: `cannot read stdin: ${errorText(e)}` };
  }
  return Buffer.concat(chunks).toString('utf8');
}

function readError(source: string, message: string): ManifestDocument {
  return { ok: false, source, index: 0, line: 0, error: 'read', message };
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Where the YAML parser (a superset of JSON) stops, for JSON errors that V8 gives no position for. */
function yamlErrorLine(text: string): number {
  if (nestingProblem(text)) return 1;
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter });
  const first = Array.isArray(docs) ? docs.flatMap((d) => d.errors)[0] : undefined;
  return first ? lineCounter.linePos(first.pos[0]).line : 1;
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code ? `${code}: ${e.message.replace(/^\w+: /, '')}` : e.message;
  }
  return String(e);
}
