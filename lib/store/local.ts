import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ownScratch } from "../exec";
import { sha256, sha256File } from "../keys";
import { acquireLock, isDead, processStartTime } from "./lock";
import {
  Artifact,
  ArtifactMeta,
  ArtifactSource,
  ArtifactStore,
  BuildInfo,
  BuildOutput,
  FileDigest,
  PutResult,
  reachableKeys,
  Scratch,
  StepRef,
} from "./store";

/** Input files larger than this are hashed but not kept for `diff`. */
const MAX_BLOB_BYTES = 1 << 20;

const KEY_PATTERN = /^[0-9a-f]{64}$/;

export function assertKey(key: string): void {
  if (!KEY_PATTERN.test(key)) throw new Error(`not a step key (64 hex digits): '${key}'`);
}

/** The store directory: `$ANTIDOTE_STORE`, else `$XDG_CACHE_HOME/antidote-images`, else `~/.cache/antidote-images`. */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ANTIDOTE_STORE) return path.resolve(env.ANTIDOTE_STORE);
  const cache = env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(cache, "antidote-images");
}

export interface LocalStoreOptions {
  /**
   * Stores to take a missing key from, read-only, in order: other local stores by directory (the tests read through
   * the user's own store, so the kernel an `up` built is not compiled again), or sources such as a bucket read as a
   * cache (`BucketCache`). An artifact found there is copied in, each file checked against its sha256, and nothing is
   * ever written to them.
   * @default none
   */
  readThrough?: (string | ArtifactSource)[];
}

/** The finished artifact `key` of the store at `root`, read without writing anything. */
async function readArtifact(root: string, key: string): Promise<Artifact | undefined> {
  const dir = path.join(root, "artifacts", key);
  let meta: ArtifactMeta;
  try {
    meta = JSON.parse(await fs.promises.readFile(path.join(dir, "meta.json"), "utf8")) as ArtifactMeta;
  } catch {
    return undefined;
  }
  if (meta.key !== key || !fs.existsSync(path.join(dir, meta.primary))) return undefined;
  return { key, dir, meta };
}

/** Another local store, read through: files are copied (reflinked where the file system can), never moved. */
class LocalDirSource implements ArtifactSource {
  constructor(readonly location: string) {}

  async find(key: string): Promise<ArtifactMeta | undefined> {
    return (await readArtifact(this.location, key))?.meta;
  }

  async fetch(meta: ArtifactMeta, dir: string): Promise<void> {
    for (const name of Object.keys(meta.files)) {
      const file = path.join(dir, name);
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      await fs.promises.copyFile(
        path.join(this.location, "artifacts", meta.key, name),
        file,
        fs.constants.COPYFILE_FICLONE,
      );
    }
  }

  async readLog(meta: ArtifactMeta): Promise<string | undefined> {
    return fs.existsSync(meta.log) ? fs.promises.readFile(meta.log, "utf8") : undefined;
  }
}

/**
 * An artifact store in a local directory:
 *
 *     artifacts/<key>/   finished artifacts: their files and meta.json
 *     tmp/               builds in progress and their scratch directories (named after their process, so a dead
 *                        one's leftovers can be removed)
 *     locks/<key>.lock   one builder per key
 *     logs/<key>.log     build logs, kept for failed builds too
 *     refs/<name>.json   the last build of each named step (what `plan` compares against)
 *     blobs/<sha256>     contents of small input files (what `diff` shows)
 *     cache/<name>/      caches shared between builds
 */
export class LocalStore implements ArtifactStore {
  readonly location: string;
  private readonly readThrough: ArtifactSource[];

  constructor(root: string = defaultStoreDir(), options: LocalStoreOptions = {}) {
    this.location = path.resolve(root);
    this.readThrough = (options.readThrough ?? [])
      .map((source) => (typeof source === "string" ? new LocalDirSource(path.resolve(source)) : source))
      .filter((source) => source.location !== this.location);
    try {
      for (const sub of ["artifacts", "tmp", "locks", "logs", "refs", "blobs", "cache"]) {
        makeDirectory(path.join(this.location, sub));
      }
      fs.accessSync(this.location, fs.constants.W_OK);
    } catch (err) {
      throw new Error(
        `expected a directory the artifact store can be created and written in, got '${this.location}': ` +
          (err as Error).message,
      );
    }
  }

  private artifactDir(key: string): string {
    assertKey(key);
    return path.join(this.location, "artifacts", key);
  }

  logPath(key: string): string {
    assertKey(key);
    return path.join(this.location, "logs", `${key}.log`);
  }

  cacheDir(name: string): string {
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw new Error(`bad cache name '${name}'`);
    const dir = path.join(this.location, "cache", name);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Whether this store, or one it reads through, has `key` (nothing is copied to answer). */
  async has(key: string): Promise<boolean> {
    if (await this.own(key)) return true;
    for (const source of this.readThrough) if (await source.find(key)) return true;
    return false;
  }

  /** The artifact, from this store or else copied in from the first store it reads through that has it. */
  async get(key: string): Promise<Artifact | undefined> {
    return (await this.own(key)) ?? (await this.copyIn(key));
  }

  private own(key: string): Promise<Artifact | undefined> {
    assertKey(key);
    return readArtifact(this.location, key);
  }

  /** The artifact from the first store read through that has it, copied in ({@link copyFrom}). */
  private async copyIn(key: string): Promise<Artifact | undefined> {
    for (const source of this.readThrough) {
      try {
        const copied = await this.copyFrom(source, key);
        if (copied) return copied;
      } catch (err) {
        if (!source.copyFailed) throw err;
        source.copyFailed(key, err as Error);
      }
    }
    return undefined;
  }

  /**
   * `source`'s artifact `key`, copied into this store with its log, every file checked against its recorded sha256 by
   * `adopt` (a mismatch stores nothing); undefined when the source lacks it. The source is only read.
   */
  async copyFrom(source: ArtifactSource, key: string): Promise<Artifact | undefined> {
    const meta = await source.find(key);
    if (!meta || meta.key !== key || !meta.files[meta.primary]) return undefined;
    const log = this.logPath(key);
    const origin = `# ${meta.name} (${meta.kind}) ${key}: copied from ${source.location}\n`;
    fs.writeFileSync(log, origin + ((await source.readLog(meta)) ?? "(no build log kept there)\n"));
    return this.adopt({ ...meta, log }, (dir) => source.fetch(meta, dir));
  }

  async put(
    key: string,
    info: BuildInfo,
    build: (dir: string, log: string) => Promise<BuildOutput>,
  ): Promise<PutResult> {
    // A store read through may have it: copied in, it is answered as cached below.
    if (this.readThrough.length > 0) await this.copyIn(key);
    return this.publish(key, info, async (tmp) => {
      const log = this.logPath(key);
      const startedAt = new Date().toISOString();
      fs.writeFileSync(log, `# ${info.name} (${info.kind}) ${key}\n# started ${startedAt}\n`);
      const out = await build(tmp, log);
      if (!fs.existsSync(path.join(tmp, out.primary))) {
        throw new Error(`${info.name}: the build did not produce its primary output '${out.primary}'`);
      }
      return {
        format: 1,
        key,
        kind: info.kind,
        name: info.name,
        image: info.image,
        inputs: info.inputs,
        files: await digestTree(tmp),
        primary: out.primary,
        outputs: out.outputs ?? {},
        startedAt,
        finishedAt: new Date().toISOString(),
        log,
      };
    });
  }

  /**
   * Stores an artifact built elsewhere (fetched from a shared store): `fill(dir)` writes its files, which must match
   * `meta.files` exactly (names, sizes and sha256s), or nothing is stored.
   */
  async adopt(meta: ArtifactMeta, fill: (dir: string) => Promise<void>): Promise<Artifact> {
    const { artifact } = await this.publish(meta.key, undefined, async (tmp) => {
      await fill(tmp);
      const got = await digestTree(tmp);
      for (const name of new Set([...Object.keys(got), ...Object.keys(meta.files)])) {
        const [want, have] = [meta.files[name], got[name]];
        if (want?.sha256 !== have?.sha256 || want?.size !== have?.size) {
          throw new Error(
            `artifact ${meta.key}: file '${name}' should have sha256 ${want?.sha256 ?? "(no such file)"}, ` +
              `got ${have?.sha256 ?? "(missing)"}`,
          );
        }
      }
      return meta;
    });
    return artifact;
  }

  /**
   * Publishes `key` once: under its lock, `produce` fills a private directory and returns its record, which is written
   * last before the directory is renamed into place. `info` (when given) is recorded as the step's latest build.
   */
  private async publish(
    key: string,
    info: BuildInfo | undefined,
    produce: (tmp: string) => Promise<ArtifactMeta>,
  ): Promise<PutResult> {
    // Every step of a run comes here, built or cached: what dead builds left is reclaimed by the next run.
    this.removeDeadBuilds();
    const finished = await this.own(key);
    if (finished) return this.reuse(finished, info);

    const release = await acquireLock(path.join(this.location, "locks", `${key}.lock`), {
      onWait: (holder) =>
        process.stderr.write(`${info?.name ?? key}: waiting for ${holder}, which is building ${key}\n`),
    });
    try {
      const built = await this.own(key);
      if (built) return this.reuse(built, info);

      const { dir: tmp, remove: removeTmp } = this.scratchDir(key);
      try {
        const meta = await produce(tmp);
        fs.writeFileSync(path.join(tmp, "meta.json"), JSON.stringify(meta, null, 2) + "\n");
        fs.renameSync(tmp, this.artifactDir(key));
      } finally {
        removeTmp();
      }
      const artifact = await this.own(key);
      if (!artifact)
        throw new Error(`${info?.name ?? key}: artifact ${key} vanished right after it was stored`);
      if (info) this.record(artifact, info);
      return { artifact, cached: false };
    } finally {
      release();
    }
  }

  private reuse(artifact: Artifact, info: BuildInfo | undefined): PutResult {
    if (info) this.record(artifact, info);
    return { artifact, cached: true };
  }

  /** Remembers the inputs of the step's latest build, and keeps small input files for `diff`. */
  private record(artifact: Artifact, info: BuildInfo): void {
    for (const file of Object.values(info.inputFiles ?? {})) {
      const content = fs.readFileSync(file);
      if (content.length > MAX_BLOB_BYTES) continue;
      const blob = path.join(this.location, "blobs", sha256(content));
      if (!fs.existsSync(blob)) writeAtomically(blob, content);
    }
    const ref: StepRef = {
      name: info.name,
      image: info.image,
      key: artifact.key,
      inputs: info.inputs,
      at: new Date().toISOString(),
    };
    writeAtomically(this.refPath(info.name), JSON.stringify(ref, null, 2) + "\n");
  }

  private refPath(name: string): string {
    return path.join(this.location, "refs", `${encodeURIComponent(name)}.json`);
  }

  async readRef(name: string): Promise<StepRef | undefined> {
    try {
      return JSON.parse(await fs.promises.readFile(this.refPath(name), "utf8")) as StepRef;
    } catch {
      return undefined;
    }
  }

  async listRefs(): Promise<StepRef[]> {
    const names = (await fs.promises.readdir(path.join(this.location, "refs"))).filter((f) =>
      f.endsWith(".json"),
    );
    const refs = await Promise.all(
      names.map((f) => this.readRef(decodeURIComponent(f.slice(0, -".json".length)))),
    );
    return refs.filter((r): r is StepRef => r !== undefined).sort((a, b) => a.name.localeCompare(b.name));
  }

  async readBlob(digest: string): Promise<Buffer | undefined> {
    if (!/^[0-9a-f]{64}$/.test(digest)) return undefined;
    try {
      return await fs.promises.readFile(path.join(this.location, "blobs", digest));
    } catch {
      return undefined;
    }
  }

  scratchDir(prefix: string): Scratch {
    const dir = path.join(this.location, "tmp", tmpName(prefix));
    fs.mkdirSync(dir);
    return { dir, remove: ownScratch(dir) };
  }

  /** Deletes the temporary directories of builds whose process is gone (killed, crashed, power lost). */
  removeDeadBuilds(): string[] {
    const removed: string[] = [];
    for (const entry of fs.readdirSync(path.join(this.location, "tmp"))) {
      const owner = parseTmpName(entry);
      if (!owner || isDead(owner)) {
        fs.rmSync(path.join(this.location, "tmp", entry), { recursive: true, force: true });
        removed.push(entry);
      }
    }
    return removed;
  }

  async gc(
    keep: Iterable<string>,
    options: { dryRun?: boolean } = {},
  ): Promise<{ removed: string[]; kept: string[] }> {
    const reachable = await reachableKeys(keep, async (key) => (await this.own(key))?.meta.inputs.parents);
    const removed: string[] = [];
    const kept: string[] = [];
    for (const key of fs.readdirSync(path.join(this.location, "artifacts")).sort()) {
      if (reachable.has(key)) {
        kept.push(key);
        continue;
      }
      removed.push(key);
      if (options.dryRun) continue;
      // Renamed out of artifacts/ first, so a reader never sees a half-deleted artifact.
      const doomed = path.join(this.location, "tmp", tmpName(`gc-${key}`));
      fs.renameSync(path.join(this.location, "artifacts", key), doomed);
      fs.rmSync(doomed, { recursive: true, force: true });
      if (KEY_PATTERN.test(key)) fs.rmSync(this.logPath(key), { force: true });
    }
    return { removed, kept };
  }
}

const hostTag = sha256(os.hostname()).slice(0, 8);

/** `<prefix>~<host>~<pid>~<process start time>~<random>`: whose it is, so a dead process's can be removed. */
function tmpName(prefix: string): string {
  return [
    prefix,
    hostTag,
    process.pid,
    processStartTime(process.pid) ?? "0",
    randomBytes(4).toString("hex"),
  ].join("~");
}

function parseTmpName(entry: string): { pid: number; host: string; started: string } | undefined {
  const [, host, pid, started] = entry.split("~");
  if (!host || !pid || started === undefined) return undefined;
  // Builds from another host sharing this directory are never ours to judge.
  return { pid: Number(pid), host: host === hostTag ? os.hostname() : host, started };
}

/**
 * Creates `dir` and its missing parents one level at a time. Node's recursive mkdir never returns when a level cannot
 * be made though its parent exists (ENOENT under /proc or /sys): it spins at full CPU, deaf to signals.
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let at = dir; !fs.existsSync(at); at = path.dirname(at)) missing.unshift(at);
  for (const level of missing) {
    try {
      fs.mkdirSync(level);
    } catch (err) {
      // Made by another process meanwhile.
      const made = fs.statSync(level, { throwIfNoEntry: false })?.isDirectory();
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !made) throw err;
    }
  }
}

function writeAtomically(file: string, content: string | Buffer): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

/** sha256 and size of every regular file under `dir`, by relative path, in sorted order. */
export async function digestTree(dir: string): Promise<Record<string, FileDigest>> {
  const out: Record<string, FileDigest> = {};
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.promises.readdir(path.join(dir, rel), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) {
        const file = path.join(dir, child);
        out[child] = { sha256: await sha256File(file), size: (await fs.promises.stat(file)).size };
      }
    }
  };
  await walk("");
  return out;
}
