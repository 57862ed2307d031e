import * as fs from "fs";
import * as path from "path";
import { GcsBucket, GcsBucketOptions, GcsLocation } from "./gcs-bucket";
import { assertKey, LocalStore } from "./local";
import {
  Artifact,
  ArtifactMeta,
  ArtifactSource,
  ArtifactStore,
  BuildInfo,
  BuildOutput,
  PutResult,
  reachableKeys,
  Scratch,
  StepRef,
} from "./store";

/** Blobs younger than this are never collected: a builder may be uploading them for an artifact not yet committed. */
const GC_BLOB_MIN_AGE_MS = 3_600_000;

export interface GcsStoreOptions extends GcsBucketOptions {
  /** Reports uploads and lost races. @default stderr */
  progress?: (line: string) => void;
}

/** The layout of a shared store in its bucket ({@link GcsStore}), read: what another store copies artifacts from. */
export class GcsArtifactSource implements ArtifactSource {
  readonly location: string;
  private readonly prefix: string;

  /** `records` reads records and logs, `files` downloads files (a cache asks for records with a short timeout). */
  constructor(
    where: GcsLocation,
    private readonly records: GcsBucket,
    private readonly files: GcsBucket = records,
  ) {
    this.location = `gs://${where.bucket}/${where.prefix}`;
    this.prefix = where.prefix;
  }

  metaName(key: string): string {
    assertKey(key);
    return `${this.prefix}artifacts/${key}.json`;
  }

  fileName(sha256: string): string {
    return `${this.prefix}files/${sha256}`;
  }

  logName(key: string): string {
    return `${this.prefix}logs/${key}.log`;
  }

  async find(key: string): Promise<ArtifactMeta | undefined> {
    const raw = await this.records.read(this.metaName(key));
    return raw && (JSON.parse(raw.toString("utf8")) as ArtifactMeta);
  }

  /** Downloads every file of the artifact, each checked against its recorded sha256 as it streams. */
  async fetch(meta: ArtifactMeta, dir: string): Promise<void> {
    for (const [name, digest] of Object.entries(meta.files)) {
      const file = path.join(dir, name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const got = await this.files.download(this.fileName(digest.sha256), file);
      if (got !== digest.sha256) {
        throw new Error(
          `${this.location}: ${this.fileName(digest.sha256)} (file '${name}' of ${meta.key}) has sha256 ${got}: ` +
            `the object is corrupt; delete it and the key's artifacts/${meta.key}.json so the step builds again`,
        );
      }
    }
  }

  async readLog(meta: ArtifactMeta): Promise<string | undefined> {
    return (await this.records.read(this.logName(meta.key)))?.toString("utf8");
  }
}

/**
 * An artifact store shared between build hosts through a GCS bucket, with a local store as read-through cache:
 *
 *     <prefix>artifacts/<key>.json   an artifact's meta.json; its presence is the commit (created only if absent)
 *     <prefix>files/<sha256>         file contents, by sha256 (shared between artifacts)
 *     <prefix>logs/<key>.log         build logs
 *
 * A key is looked up in the cache, then in the bucket (fetched files are checked against their sha256), and built
 * locally only when both miss. Every object is created only if absent (`ifGenerationMatch=0`), and an upload either
 * finishes whole or leaves no object, so a finished build's files go up first and its record last: racing builders
 * cannot corrupt a key, an interrupted upload never looks finished, and a host needs no right to delete or overwrite.
 * Refs and blobs for `plan`/`diff` stay in the local cache.
 */
export class GcsStore implements ArtifactStore {
  readonly location: string;
  private readonly client: GcsBucket;
  private readonly prefix: string;
  private readonly source: GcsArtifactSource;
  private readonly progress: (line: string) => void;

  constructor(
    where: GcsLocation,
    readonly cache: LocalStore,
    options: GcsStoreOptions = {},
  ) {
    this.client = new GcsBucket(where.bucket, options);
    this.source = new GcsArtifactSource(where, this.client);
    this.location = this.source.location;
    this.prefix = where.prefix;
    this.progress = options.progress ?? ((line) => process.stderr.write(`${line}\n`));
  }

  private metaName(key: string): string {
    return this.source.metaName(key);
  }

  private fileName(sha256: string): string {
    return this.source.fileName(sha256);
  }

  logPath(key: string): string {
    return this.cache.logPath(key);
  }

  cacheDir(name: string): string {
    return this.cache.cacheDir(name);
  }

  scratchDir(prefix: string): Scratch {
    return this.cache.scratchDir(prefix);
  }

  async has(key: string): Promise<boolean> {
    if (await this.cache.has(key)) return true;
    return (await this.client.stat(this.metaName(key))) !== undefined;
  }

  /** The artifact from the cache, else fetched from the bucket into the cache (every file checked by sha256). */
  async get(key: string): Promise<Artifact | undefined> {
    return (await this.cache.get(key)) ?? (await this.cache.copyFrom(this.source, key));
  }

  /** Fetches or builds the artifact, then makes sure the bucket has it (a build whose upload failed is uploaded now). */
  async put(
    key: string,
    info: BuildInfo,
    build: (dir: string, log: string) => Promise<BuildOutput>,
  ): Promise<PutResult> {
    await this.get(key);
    const result = await this.cache.put(key, info, build);
    await this.upload(result.artifact);
    return result;
  }

  /** Uploads a finished artifact and commits it, unless the bucket has the key already. */
  private async upload(artifact: Artifact): Promise<void> {
    const { key, meta } = artifact;
    const metaName = this.metaName(key);
    if (await this.client.stat(metaName)) return;
    // Each object is looked up before it is created: a create onto an existing name would be a replacement, which
    // needs the right to delete (the create's precondition only keeps a racing builder's object from being replaced).
    const digests = new Map(Object.entries(meta.files).map(([name, d]) => [d.sha256, name]));
    for (const [sha256, name] of digests) {
      // Content-addressed: an object already there (or created by a racing builder) has these very bytes.
      if (!(await this.client.stat(this.fileName(sha256))))
        await this.client.create(this.fileName(sha256), { file: path.join(artifact.dir, name) });
    }
    // A log already there is another build's of the same key: either tells how the key was built.
    const logName = this.source.logName(key);
    if (fs.existsSync(meta.log) && !(await this.client.stat(logName)))
      await this.client.create(logName, { file: meta.log }, { contentType: "text/plain" });
    const record = Buffer.from(JSON.stringify(meta, null, 2) + "\n");
    const committed = await this.client.create(metaName, record, { contentType: "application/json" });
    this.progress(
      committed
        ? `${meta.name}: uploaded ${key.slice(0, 12)} to ${this.location}`
        : `${meta.name}: another builder stored ${key.slice(0, 12)} in ${this.location} first; keeping theirs there`,
    );
  }

  readRef(name: string): Promise<StepRef | undefined> {
    return this.cache.readRef(name);
  }

  listRefs(): Promise<StepRef[]> {
    return this.cache.listRefs();
  }

  readBlob(sha256: string): Promise<Buffer | undefined> {
    return this.cache.readBlob(sha256);
  }

  /**
   * Removes from the bucket (and the local cache) every artifact not reachable from `keep` through parent keys, then
   * the file objects no remaining artifact uses (except recent ones, which an upload in flight may be about to use).
   */
  async gc(
    keep: Iterable<string>,
    options: { dryRun?: boolean } = {},
  ): Promise<{ removed: string[]; kept: string[] }> {
    const records = await this.client.list(`${this.prefix}artifacts/`);
    const metas = new Map<string, { meta: ArtifactMeta; generation: string }>();
    for (const object of records) {
      const key = object.name.slice(`${this.prefix}artifacts/`.length).replace(/\.json$/, "");
      const raw = await this.client.read(object.name);
      if (raw)
        metas.set(key, {
          meta: JSON.parse(raw.toString("utf8")) as ArtifactMeta,
          generation: object.generation,
        });
    }
    const reachable = await reachableKeys(keep, async (key) => metas.get(key)?.meta.inputs.parents);
    const removed = [...metas.keys()].filter((k) => !reachable.has(k)).sort();
    const kept = [...metas.keys()].filter((k) => reachable.has(k)).sort();
    await this.cache.gc(keep, options);
    if (options.dryRun) return { removed, kept };
    for (const key of removed) {
      await this.client.remove(this.metaName(key), { ifGenerationMatch: metas.get(key)?.generation });
      await this.client.remove(this.source.logName(key));
    }
    const used = new Set(
      kept.flatMap((k) => Object.values(metas.get(k)?.meta.files ?? {}).map((f) => f.sha256)),
    );
    for (const object of await this.client.list(`${this.prefix}files/`)) {
      const sha256 = object.name.slice(`${this.prefix}files/`.length);
      const age = Date.now() - Date.parse(object.timeCreated ?? "");
      if (!used.has(sha256) && age > GC_BLOB_MIN_AGE_MS) await this.client.remove(object.name);
    }
    return { removed, kept };
  }
}
