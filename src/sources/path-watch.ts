/**
 * Waits for a file to change its name in its directory (created, removed, replaced), so a unix socket that H2O
 * binds again after a restart is connected to at once instead of at the next backoff step. The directory is
 * watched (inotify), not the file, since the file is gone while H2O restarts. A timer bounds every wait: inotify
 * misses events on some filesystems (NFS, some FUSE mounts), and a directory that does not exist yet cannot be
 * watched until it does.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';

export class PathWatch {
  private readonly _dir: string;
  private readonly _name: string;
  private _watcher: FSWatcher | undefined;
  private _changed = false;
  private _changedAt = -Infinity;
  private _wake: (() => void) | undefined;

  constructor(path: string) {
    this._dir = dirname(path);
    this._name = basename(path);
    this._watch();
  }

  /** Whether the directory is being watched (false: only the timers wake a wait). */
  get watching(): boolean {
    return this._watcher !== undefined;
  }

  /** `performance.now()` of the last change seen, -Infinity before the first. */
  get changedAt(): number {
    return this._changedAt;
  }

  /**
   * Resolves true when the path changes (at once if it changed since the last wait), false after `ms` or when
   * `signal` aborts.
   */
  wait(ms: number, signal: AbortSignal): Promise<boolean> {
    this._watch();
    if (this._changed || signal.aborted) {
      const changed = this._changed;
      this._changed = false;
      return Promise.resolve(changed);
    }
    return new Promise((resolve) => {
      const done = (changed: boolean): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this._wake = undefined;
        this._changed = false;
        resolve(changed);
      };
      const onAbort = (): void => done(false);
      const timer = setTimeout(() => done(false), ms);
      signal.addEventListener('abort', onAbort, { once: true });
      this._wake = () => done(true);
    });
  }

  close(): void {
    this._watcher?.close();
    this._watcher = undefined;
  }

  private _watch(): void {
    if (this._watcher !== undefined) return;
    try {
      this._watcher = watch(this._dir, { persistent: false }, (_event, filename) => {
        // Some platforms do not say which name changed: then any change may be ours.
        if (filename !== null && filename !== this._name) return;
        this._changed = true;
        this._changedAt = performance.now();
        this._wake?.();
      });
    } catch {
      return; // no such directory (yet), or no inotify: the timers alone
    }
    // The directory itself went away (or the watch broke): watch again at the next wait.
    this._watcher.on('error', () => this.close());
  }
}
