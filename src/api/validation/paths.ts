// Field paths as the user wrote them (`spec.failKernRequest.callchain[0].predicate`), and short
// descriptions of values for messages (never the whole value: it may be huge or hostile).

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** User text longer than this is shown as its prefix and its length, in messages and logs. */
export const MAX_ECHOED_TEXT = 200;

/** `text`, or its first `max` characters followed by `... (N characters)`: user text never echoes in full. */
export function clipText(text: string, max = MAX_ECHOED_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`;
}

/** Appends an object key: `.key`, or `["app.kubernetes.io/name"]` when the key is not a plain name. */
export function joinKey(path: string, key: string): string {
  if (key.length > 80) return `${path}[${JSON.stringify(key.slice(0, 80))}... (${key.length} characters)]`;
  if (PLAIN_KEY.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

export function joinIndex(path: string, index: number): string {
  return `${path}[${index}]`;
}

/** Converts an ajv instancePath (JSON pointer) to a user path, using the data to tell arrays from maps. */
export function pointerToPath(pointer: string, root: unknown): string {
  if (pointer === '') return '';
  let path = '';
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node) && /^\d+$/.test(key)) {
      path = joinIndex(path, Number(key));
      node = node[Number(key)];
    } else {
      path = joinKey(path, key);
      node = isRecord(node) ? node[key] : undefined;
    }
  }
  return path;
}

/** The segments of a user path: `spec.pods["a.b"][0]` -> ['spec', 'pods', 'a.b', 0]. Inverse of joinKey/joinIndex. */
export function parsePath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([^.[\]]+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(path)) !== null) {
    if (m[1] !== undefined) out.push(Number(m[1]));
    else if (m[2] !== undefined) out.push(JSON.parse(m[2]) as string);
    else if (m[3] !== undefined) out.push(m[3]);
  }
  return out;
}

/** The path with list indices erased (`spec.failKernRequest.callchain[]`), to look up per-field rules. */
export function genericPath(path: string): string {
  return path.replace(/\[\d+\]/g, '[]').replace(/\["(?:[^"\\]|\\.)*"\]/g, '.*');
}

/** `"abc"`, `5`, `true`, `null`, `a list`, `an object`: for "got ..." in messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}
