import * as fs from "fs";
import * as path from "path";
import { sha256 } from "../keys";
import { GcsArtifactSource } from "./gcs";
import { GcsBucket, GcsLocation, storageCredentials } from "./gcs-bucket";
import { acquireLock } from "./lock";
import { ArtifactMeta, ArtifactSource } from "./store";

/** How long the first request to the cache may take before it counts as unreachable. */
export const CACHE_PROBE_TIMEOUT_MS = 5_000;

/** After the cache failed, how long no step asks it again (each step that skips it extends this). */
export const CACHE_QUIET_MS = 10 * 60_000;

export interface BucketCacheOptions {
  /** The local store's directory for the cache's state (whether it was found unusable, and a lock), made on first use. */
  stateDir: () => string;
  /** Where credentials are read from; without any, requests are anonymous. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** The service's base URL ({@link GcsBucket}). @default `$STORAGE_EMULATOR_HOST`, else Google's */
  apiEndpoint?: string;
  /** Timeout of each request for a record (the probe is one). @default {@link CACHE_PROBE_TIMEOUT_MS} */
  probeTimeoutMs?: number;
  /** Receives the warning lines. @default stderr */
  warn?: (line: string) => void;
}

/**
 * A shared store's bucket (`gs://bucket/prefix`, the nightly's) read as a cache by a local store: never written, and
 * optional. Requests carry no credentials unless the environment names a key (a public bucket needs none, and no
 * metadata server is waited for). Before its first lookup a process asks the bucket once, with a short timeout and
 * no retries, whether it holds artifacts; if it cannot be reached, refuses, or holds none, one warning says so and
 * every step builds as if there were no cache. That finding is kept in the local store (`stateDir`), under a lock, so
 * the step commands of a run (separate processes) neither wait for the bucket again nor warn again while it is
 * fresh ({@link CACHE_QUIET_MS}, extended by each step that skips the cache). A hit is copied in by the local store,
 * every file checked against its recorded sha256; a copy that fails is said and the step built.
 */
export class BucketCache implements ArtifactSource {
  readonly location: string;
  private readonly source: GcsArtifactSource;
  private readonly records: GcsBucket;
  private readonly prefix: string;
  private readonly stateDir: () => string;
  private readonly warn: (line: string) => void;
  private usable?: Promise<boolean>;

  constructor(where: GcsLocation, options: BucketCacheOptions) {
    const env = options.env ?? process.env;
    const common = {
      env,
      anonymous: storageCredentials(env) === undefined,
      ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
    };
    // Records with a short timeout and no retries (the library's backoff would wait half a minute for a closed
    // port); files, once a record was found, with the library's retries.
    this.records = new GcsBucket(where.bucket, {
      ...common,
      maxRetries: 0,
      timeoutMs: options.probeTimeoutMs ?? CACHE_PROBE_TIMEOUT_MS,
    });
    this.source = new GcsArtifactSource(where, this.records, new GcsBucket(where.bucket, common));
    this.location = this.source.location;
    this.prefix = where.prefix;
    this.stateDir = options.stateDir;
    this.warn = options.warn ?? ((line) => process.stderr.write(`${line}\n`));
  }

  async find(key: string): Promise<ArtifactMeta | undefined> {
    if (!(await this.isUsable())) return undefined;
    try {
      return await this.source.find(key);
    } catch (err) {
      this.usable = this.giveUp(firstLine(err));
      return undefined;
    }
  }

  fetch(meta: ArtifactMeta, dir: string): Promise<void> {
    return this.source.fetch(meta, dir);
  }

  async readLog(meta: ArtifactMeta): Promise<string | undefined> {
    try {
      return await this.source.readLog(meta);
    } catch {
      return undefined;
    }
  }

  copyFailed(key: string, err: Error): void {
    this.warn(`warning: cache ${this.location}: could not copy ${key} (${firstLine(err)}); building it here`);
  }

  /** Whether this process asks the cache: decided once, by the first lookup. */
  private isUsable(): Promise<boolean> {
    this.usable ??= this.probe();
    return this.usable;
  }

  private async probe(): Promise<boolean> {
    const release = await this.lock();
    try {
      if (this.skipIfFresh()) return false;
      let problem: string;
      try {
        const any = await this.records.list(`${this.prefix}artifacts/`, { limit: 1 });
        if (any.length > 0) {
          fs.rmSync(this.marker, { force: true });
          return true;
        }
        problem = "no artifacts there (no such bucket or prefix, or nothing published yet)";
      } catch (err) {
        problem = firstLine(err);
      }
      this.markUnusable(problem);
      return false;
    } finally {
      release();
    }
  }

  /** After a lookup failed: unless another process just said so, says it and keeps the cache off for a while. */
  private async giveUp(problem: string): Promise<boolean> {
    const release = await this.lock();
    try {
      if (!this.skipIfFresh()) this.markUnusable(problem);
      return false;
    } finally {
      release();
    }
  }

  /** The file that says the cache was found unusable, and when (its mtime). */
  private get marker(): string {
    return path.join(this.stateDir(), `unusable-${sha256(this.location).slice(0, 16)}`);
  }

  private lock(): Promise<() => void> {
    return acquireLock(`${this.marker}.lock`);
  }

  /** True (and the finding extended) when a process found the cache unusable recently. */
  private skipIfFresh(): boolean {
    const found = fs.statSync(this.marker, { throwIfNoEntry: false });
    if (!found || Date.now() - found.mtimeMs > CACHE_QUIET_MS) return false;
    const now = new Date();
    fs.utimesSync(this.marker, now, now);
    return true;
  }

  private markUnusable(problem: string): void {
    fs.writeFileSync(this.marker, `${new Date().toISOString()} ${this.location}: ${problem}\n`);
    this.warn(
      `warning: cache ${this.location} is not usable (${problem}): building locally what it would have given; ` +
        `not asked again for ${CACHE_QUIET_MS / 60_000} minutes`,
    );
  }
}

function firstLine(err: unknown): string {
  return (
    String((err as Error).message ?? err)
      .split("\n")
      .find((l) => l.trim()) ?? "no reason given"
  );
}
