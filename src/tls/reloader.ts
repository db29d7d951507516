// Serving certificate rotation without restart: watch the certificate and key files, and when both
// read back as a matching pair, swap the server's secure context. Connections already open keep
// their session; new handshakes get the new certificate, so no request is dropped.
//
// fs.watch on the files' directories catches Kubernetes Secret volume updates (an atomic swap of
// the `..data` symlink, which a watch on the file itself misses) and editors' rename-on-save; a
// poll (default 10 s) covers filesystems where fs.watch reports nothing (NFS, some overlays).
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { TLS_SERVER_OPTIONS } from './server-options.js';

export interface CertFiles {
  certFile: string;
  keyFile: string;
}

export interface KeyMaterial {
  cert: string;
  key: string;
}

export type ReloadOutcome =
  | { kind: 'unchanged' }
  | { kind: 'reloaded'; material: KeyMaterial }
  /** Files unreadable or a mismatched pair (often mid-rotation: cert written, key not yet): keep the old. */
  | { kind: 'rejected'; reason: string };

export interface ReloaderOptions extends CertFiles {
  pollIntervalMs?: number;
  /** Coalesces the burst of events one rotation makes. */
  debounceMs?: number;
  onOutcome?: (outcome: ReloadOutcome) => void;
}

/** Reads and checks a cert/key pair; throws with a message naming the file on any problem. */
export function readKeyMaterialSync(files: CertFiles): KeyMaterial {
  const material = { cert: readFileSync(files.certFile, 'utf8'), key: readFileSync(files.keyFile, 'utf8') };
  checkPair(material, files);
  return material;
}

function checkPair(material: KeyMaterial, files: CertFiles): void {
  try {
    // Builds exactly what the server would use: fails on unparsable PEM or a key that is not the cert's.
    createSecureContext(material);
  } catch (err) {
    throw new Error(
      `${files.certFile} / ${files.keyFile}: not a usable certificate and key pair (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

export class CertReloader {
  private current: KeyMaterial;
  private watchers: FSWatcher[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private servers: TlsServer[] = [];
  private inflight: Promise<ReloadOutcome> | undefined;

  constructor(private readonly opts: ReloaderOptions) {
    this.current = readKeyMaterialSync(opts);
  }

  get material(): KeyMaterial {
    return this.current;
  }

  /** Servers whose secure context follows the files. */
  attach(server: TlsServer): void {
    this.servers.push(server);
  }

  start(): void {
    for (const dir of new Set([dirname(this.opts.certFile), dirname(this.opts.keyFile)])) {
      try {
        const w = watch(dir, { persistent: false }, () => this.schedule());
        w.on('error', () => w.close());
        this.watchers.push(w);
      } catch {
        // No inotify here (or the limit is reached): the poll below still notices rotations.
      }
    }
    this.pollTimer = setInterval(() => this.schedule(), this.opts.pollIntervalMs ?? 10_000);
    this.pollTimer.unref();
  }

  stop(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.pollTimer = undefined;
    this.debounceTimer = undefined;
  }

  private schedule(): void {
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.reloadNow();
    }, this.opts.debounceMs ?? 100);
    this.debounceTimer.unref();
  }

  /** Re-reads the files now; swaps the context when they changed and form a valid pair. */
  reloadNow(): Promise<ReloadOutcome> {
    // One read at a time, so a slow read cannot overwrite a newer one.
    const run = (this.inflight ?? Promise.resolve()).then(() => this.reloadOnce());
    this.inflight = run;
    return run;
  }

  private async reloadOnce(): Promise<ReloadOutcome> {
    let outcome: ReloadOutcome;
    try {
      const [cert, key] = await Promise.all([readFile(this.opts.certFile, 'utf8'), readFile(this.opts.keyFile, 'utf8')]);
      if (cert === this.current.cert && key === this.current.key) {
        outcome = { kind: 'unchanged' };
      } else {
        const material = { cert, key };
        checkPair(material, this.opts);
        for (const server of this.servers) server.setSecureContext({ ...TLS_SERVER_OPTIONS, ...material });
        this.current = material;
        outcome = { kind: 'reloaded', material };
      }
    } catch (err) {
      outcome = { kind: 'rejected', reason: err instanceof Error ? err.message : String(err) };
    }
    this.opts.onOutcome?.(outcome);
    return outcome;
  }
}
