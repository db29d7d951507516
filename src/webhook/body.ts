// Reads an AdmissionReview body: UTF-8 JSON up to a limit. Hand-written instead of express.json()
// because this is the webhook's hot path and the apiserver's requests are always identity-encoded
// UTF-8 JSON: body-parser's generality (charset decoders, content negotiation, inflation) cost about
// as much per request as the whole admission decision (see bench/webhook.bench.ts).
import type { IncomingMessage } from 'node:http';

export type BodyResult =
  | { ok: true; value: unknown }
  | { ok: false; status: 400 | 413 | 415; message: string; /** the rest of the body was not read */ abandoned: boolean };

const UTF8_CHARSET = /;\s*charset\s*=\s*"?(utf-?8)"?\s*(?:;|$)/i;
const ANY_CHARSET = /;\s*charset\s*=/i;

/** Bodies above this are parsed one per event-loop turn (see parseInTurn). */
export const LARGE_PARSE_BYTES = 64 * 1024;

const largeParses: (() => void)[] = [];

/**
 * Runs `work` in a turn of the event loop of its own, after the I/O already waiting. Parsing a
 * 3 MiB body takes tens of milliseconds; several finishing together would otherwise parse back to
 * back in one turn, and a small review waiting for its next TLS or HTTP step would wait for all of
 * them. One large parse per turn keeps that wait at one parse.
 */
export function parseInTurn(work: () => void): void {
  largeParses.push(work);
  if (largeParses.length === 1) setImmediate(runNextParse);
}

function runNextParse(): void {
  const work = largeParses[0];
  try {
    work?.();
  } finally {
    largeParses.shift();
    if (largeParses.length > 0) setImmediate(runNextParse);
  }
}

export function readJsonBody(req: IncomingMessage, limit: number, done: (result: BodyResult) => void): void {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    req.resume();
    done({ ok: false, status: 415, message: `Content-Encoding ${encoding} is not supported; send identity-encoded JSON`, abandoned: false });
    return;
  }
  const type = req.headers['content-type'] ?? '';
  if (ANY_CHARSET.test(type) && !UTF8_CHARSET.test(type)) {
    req.resume();
    done({ ok: false, status: 415, message: `unsupported charset in Content-Type ${JSON.stringify(type)}; send UTF-8`, abandoned: false });
    return;
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    done({ ok: false, status: 413, message: `request body exceeds ${limit} bytes`, abandoned: true });
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  let finished = false;
  const finish = (result: BodyResult): void => {
    if (finished) return;
    finished = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    done(result);
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    if (received > limit) {
      finish({ ok: false, status: 413, message: `request body exceeds ${limit} bytes`, abandoned: true });
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = (): void => {
    if (received > LARGE_PARSE_BYTES) parseInTurn(parse);
    else parse();
  };
  const parse = (): void => {
    const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks, received).toString('utf8');
    if (text.length === 0) {
      finish({ ok: false, status: 400, message: 'empty body: send a JSON AdmissionReview', abandoned: false });
      return;
    }
    try {
      finish({ ok: true, value: JSON.parse(text) as unknown });
    } catch (err) {
      finish({ ok: false, status: 400, message: `malformed JSON: ${err instanceof Error ? err.message : String(err)}`, abandoned: false });
    }
  };
  // An aborted upload has no one to answer; the socket is already gone.
  const onError = (): void => {
    finished = true;
  };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}
