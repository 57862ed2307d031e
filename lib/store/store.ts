import { InputsSummary, Json } from "../keys";

/** Checksum and size of one file of an artifact. */
export interface FileDigest {
  sha256: string;
  size: number;
}

/** `meta.json`: written last inside the temporary directory, so an artifact without it never existed. */
export interface ArtifactMeta {
  /** Layout version of this record. */
  format: 1;
  key: string;
  kind: string;
  /** Logical name of the step that built it (e.g. `frr-rootfs`). */
  name: string;
  /** Image the step belongs to. */
  image: string;
  inputs: InputsSummary;
  /** Every output file (relative path → digest). */
  files: Record<string, FileDigest>;
  /** The file that stands for the artifact (the tarball, the disk, the report). */
  primary: string;
  /** Step-specific results (package manifest summary, kernel version, …). */
  outputs: Record<string, Json>;
  startedAt: string;
  finishedAt: string;
  /** Path of the build log. */
  log: string;
}

export interface Artifact {
  key: string;
  /** Directory holding the artifact's files. */
  dir: string;
  meta: ArtifactMeta;
}

/** What a build function returns: the primary file and step-specific results. */
export interface BuildOutput {
  primary: string;
  outputs?: Record<string, Json>;
}

/** Identifies a build for the store's records. */
export interface BuildInfo {
  kind: string;
  name: string;
  image: string;
  inputs: InputsSummary;
  /** Input files (role → path) whose contents the store keeps, so `diff` can show what changed. */
  inputFiles?: Record<string, string>;
}

/** The last build recorded for a named step: what `plan` compares against. */
export interface StepRef {
  name: string;
  image: string;
  key: string;
  inputs: InputsSummary;
  at: string;
}

export interface PutResult {
  artifact: Artifact;
  /** True when the artifact was already there and nothing was built. */
  cached: boolean;
}

/** A build's scratch directory and how to remove it. */
export interface Scratch {
  dir: string;
  remove(): void;
}

/**
 * A store another one takes missing artifacts from, only ever reading it (`LocalStore`'s `readThrough`): another
 * local store, or a shared store's bucket read as a cache.
 */
export interface ArtifactSource {
  readonly location: string;
  /** The record of `key`, or undefined when the source lacks it (or, for a cache, cannot be asked). */
  find(key: string): Promise<ArtifactMeta | undefined>;
  /** Writes the files of the artifact `meta` records into `dir`; the caller checks them against the record. */
  fetch(meta: ArtifactMeta, dir: string): Promise<void>;
  /** The build log of the artifact, if the source kept one. */
  readLog(meta: ArtifactMeta): Promise<string | undefined>;
  /**
   * A cache's: told when an artifact it has could not be copied in (a broken download, a file whose sha256 does not
   * match), after which the key is built instead. A source without it fails the caller.
   */
  copyFailed?(key: string, err: Error): void;
}

/** Maps step keys to finished artifacts. Publication is atomic and per-key exclusive. */
export interface ArtifactStore {
  readonly location: string;
  has(key: string): Promise<boolean>;
  get(key: string): Promise<Artifact | undefined>;
  /**
   * Returns the artifact for `key`, building it with `build(dir, log)` when it is missing. `build` writes into a
   * private directory that becomes the artifact only if it succeeds. Concurrent callers for one key build once.
   */
  put(
    key: string,
    info: BuildInfo,
    build: (dir: string, log: string) => Promise<BuildOutput>,
  ): Promise<PutResult>;
  /** Where the build log of `key` is written. */
  logPath(key: string): string;
  /** Directory for caches shared between builds (package downloads, ccache), by name. */
  cacheDir(name: string): string;
  /**
   * A new, empty scratch directory for a build of this process, its name starting with `prefix`: removed by
   * `remove()`, by this process's reaper if the process is killed first, and by the next run if both died.
   */
  scratchDir(prefix: string): Scratch;
  readRef(name: string): Promise<StepRef | undefined>;
  /** Every step's latest recorded build. */
  listRefs(): Promise<StepRef[]>;
  /** Content of an input file recorded by an earlier build, by its sha256. */
  readBlob(sha256: string): Promise<Buffer | undefined>;
  /** Removes every artifact not reachable (through parent keys) from `keep`; `dryRun` only lists them. */
  gc(keep: Iterable<string>, options?: { dryRun?: boolean }): Promise<{ removed: string[]; kept: string[] }>;
}

/** The keys `keep` reaches through the artifacts' parents: what a gc keeps. */
export async function reachableKeys(
  keep: Iterable<string>,
  parentsOf: (key: string) => Promise<Record<string, string> | undefined>,
): Promise<Set<string>> {
  const reachable = new Set<string>();
  const queue = [...keep];
  while (queue.length > 0) {
    const key = queue.pop() as string;
    if (reachable.has(key)) continue;
    reachable.add(key);
    queue.push(...Object.values((await parentsOf(key)) ?? {}));
  }
  return reachable;
}
