// Scrapes a /metrics endpoint over a real socket and reads the Prometheus text format.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m?.[1] || m[3] === undefined) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1');
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(url: string, init: RequestInit = {}): Promise<{ status: number; contentType: string; samples: Sample[]; text: string }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', samples: res.status === 200 ? parseExposition(text) : [], text };
}

/** The value of the one sample with this name whose labels include `labels`; undefined when none. */
export function value(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hit = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hit.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${hit.length} samples`);
  return hit[0]?.value;
}
