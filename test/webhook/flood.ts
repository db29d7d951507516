// The flood of issue 11 (100 concurrent ~3 MB pod reviews), shared by the limits test and the
// webhook-flood benchmark: the sender script, the webhook's Deployment heap options, its RSS.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');

/** argv: port, body file, CA file, count. Prints 'sending', then the JSON list of statuses (0: closed unanswered). */
export const FLOOD = `
const https = require('node:https');
const fs = require('node:fs');
const [port, file, caFile, count] = process.argv.slice(1);
const body = fs.readFileSync(file);
const ca = fs.readFileSync(caFile, 'utf8');
console.log('sending');
const one = () => new Promise((resolve) => {
  const req = https.request({ host: '127.0.0.1', port: Number(port), method: 'POST', path: '/mutate-pods', ca, servername: 'localhost', agent: false,
    headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
  req.setTimeout(30000, () => req.destroy());
  req.on('error', () => resolve(0));
  req.end(body);
});
Promise.all(Array.from({ length: Number(count) }, one)).then((s) => console.log(JSON.stringify(s)));
`;

/** The Deployment's memory limit. */
export const DEPLOYMENT_LIMIT = 256 * 1024 * 1024;

/** NODE_OPTIONS as the webhook Deployment sets them: the heap limits the 256Mi budget relies on. */
export function deploymentNodeOptions(): string {
  const text = readFileSync(join(repo, 'manifests/webhook/deployment.yaml'), 'utf8');
  const m = /- name: NODE_OPTIONS\s+value: "([^"]+)"/.exec(text);
  if (!m?.[1]) throw new Error('manifests/webhook/deployment.yaml sets no NODE_OPTIONS');
  return m[1];
}

export function rssOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}
