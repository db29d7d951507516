// A ClusterStore read from a directory of manifests (*.yaml, *.yml, *.json, multi-document),
// re-read on change: fs.watch for promptness plus polling, because fs.watch misses changes on some
// filesystems (network mounts, ConfigMap volumes whose files are swapped through a `..data` symlink).
// Bad documents are logged and skipped; the rest of the directory still loads.
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { StoreEvent } from './store.js';
import { InMemoryStore } from './memory.js';
import { parseManifestDocuments, type DocumentProblem, type StoredObject } from './documents.js';
import { defaultLog, errorMessage, type Log } from './log.js';
import { objectKey } from './objects.js';

export interface ManifestDirOptions {
  /** How often to look for changes fs.watch did not report. Default 1000 ms. */
  pollIntervalMs?: number;
  log?: Log;
  /** Use fs.watch besides polling (default true; off tests the polling path alone). */
  fsWatch?: boolean;
  /**
   * Whether the watcher and poll timer keep the process alive (default false: servers that own a
   * listening socket stay up anyway, and tools that read once must be able to exit).
   */
  persistent?: boolean;
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

interface FileState {
  path: string;
  mtimeMs: number;
  size: number;
}

export class ManifestDirStore extends InMemoryStore {
  private readonly pollIntervalMs: number;
  private readonly fsWatch: boolean;
  private readonly persistent: boolean;
  private readonly log: Log;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private signature = '';
  private reading: Promise<void> = Promise.resolve();
  private pending = false;
  private stopped = false;
  private currentProblems: DocumentProblem[] = [];

  constructor(readonly dir: string, options: ManifestDirOptions = {}) {
    const log = options.log ?? defaultLog('kernelchaos-manifests');
    super((error: unknown, event: StoreEvent) => log.error({ err: errorMessage(error), event: event.type, kind: event.kind }, 'store listener failed'));
    this.log = log;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.fsWatch = options.fsWatch ?? true;
    this.persistent = options.persistent ?? false;
    if (!Number.isFinite(this.pollIntervalMs) || this.pollIntervalMs <= 0) {
      throw new Error(`pollIntervalMs must be a positive number of milliseconds, got ${options.pollIntervalMs}`);
    }
  }

  /** Problems of the last read (file#document and why), for `--manifests` diagnostics. */
  get problems(): readonly DocumentProblem[] {
    return this.currentProblems;
  }

  /** Reads the directory once, then watches it. Rejects when `dir` is not a readable directory. */
  override async start(): Promise<void> {
    this.stopped = false;
    let info;
    try {
      info = await stat(this.dir);
    } catch (error) {
      throw new Error(`manifest directory ${this.dir} cannot be read: ${errorMessage(error)}`);
    }
    if (!info.isDirectory()) throw new Error(`manifest directory ${this.dir} is not a directory`);
    await this.reload(true);
    this.markSynced(true);
    if (this.fsWatch) this.startFsWatch();
    this.timer = setInterval(() => this.schedule(false), this.pollIntervalMs);
    if (!this.persistent) this.timer.unref();
  }

  private startFsWatch(): void {
    try {
      // Coalesce the burst of events one save produces (truncate, write, rename) into one read.
      this.watcher = watch(this.dir, { persistent: this.persistent }, () => {
        if (this.debounce) return;
        this.debounce = setTimeout(() => {
          this.debounce = undefined;
          this.schedule(true);
        }, 20);
      });
      this.watcher.on('error', (error) => {
        this.log.warn({ dir: this.dir, err: errorMessage(error) }, 'fs.watch failed; relying on polling');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (error) {
      this.log.warn({ dir: this.dir, err: errorMessage(error) }, 'fs.watch unavailable; relying on polling');
    }
  }

  override stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = undefined;
  }

  /** Re-reads now (tests and SIGHUP); resolves when the store reflects the directory. */
  async refresh(): Promise<void> {
    this.schedule(true);
    await this.reading;
    // A reload queued behind the one in flight must finish too.
    await this.reading;
  }

  /** Serialises reads; changes arriving during a read cause one more read after it. */
  private schedule(force: boolean): void {
    if (this.stopped) return;
    if (this.pending) return;
    this.pending = true;
    this.reading = this.reading.then(async () => {
      this.pending = false;
      if (this.stopped) return;
      try {
        await this.reload(force);
      } catch (error) {
        this.log.error({ dir: this.dir, err: errorMessage(error) }, 'reading the manifest directory failed');
      }
    });
  }

  private async reload(force: boolean): Promise<void> {
    const files = await this.scan();
    const signature = files.map((f) => `${f.path}:${f.mtimeMs}:${f.size}`).join('|');
    if (!force && signature === this.signature) return;
    this.signature = signature;
    const objects: StoredObject[] = [];
    const problems: DocumentProblem[] = [];
    const seen = new Map<string, string>();
    for (const file of files) {
      const name = relative(this.dir, file.path);
      let text: string;
      try {
        text = await readFile(file.path, 'utf8');
      } catch (error) {
        // Deleted between scan and read: the next read settles it.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        problems.push({ source: name, message: `cannot read: ${errorMessage(error)}` });
        continue;
      }
      const parsed = parseManifestDocuments(text, name);
      problems.push(...parsed.problems);
      for (const o of parsed.objects) {
        const key = objectKey(o.kind, o.object.metadata?.namespace, o.object.metadata?.name ?? '');
        const earlier = seen.get(key);
        if (earlier) problems.push({ source: o.source, message: `${key} is also defined in ${earlier}; the later definition wins` });
        seen.set(key, o.source);
        objects.push(o);
      }
    }
    this.reportProblems(problems);
    this.replace(objects);
  }

  /** Logs problems that are new since the last read, so a bad file is reported once, not every poll. */
  private reportProblems(problems: DocumentProblem[]): void {
    const before = new Set(this.currentProblems.map((p) => `${p.source}\0${p.message}`));
    for (const p of problems) {
      if (!before.has(`${p.source}\0${p.message}`)) this.log.warn({ dir: this.dir, source: p.source }, `skipped manifest: ${p.message}`);
    }
    this.currentProblems = problems;
  }

  /** Manifest files under dir, sorted; dot-entries (ConfigMap's `..data` machinery, editor swap files) skipped. */
  private async scan(): Promise<FileState[]> {
    const out: FileState[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        // The directory vanished: treat it as empty (every object is deleted) until it returns.
        if (dir === this.dir) return;
        this.log.warn({ dir, err: errorMessage(error) }, 'cannot list manifest subdirectory');
        return;
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const path = join(dir, entry.name);
        let info;
        try {
          info = await stat(path); // follows symlinks
        } catch {
          continue;
        }
        if (info.isDirectory()) {
          if (depth < 8) await walk(path, depth + 1);
        } else if (info.isFile() && MANIFEST_FILE.test(entry.name)) {
          out.push({ path, mtimeMs: info.mtimeMs, size: info.size });
        }
      }
    };
    await walk(this.dir, 0);
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
