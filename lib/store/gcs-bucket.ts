import { createHash } from "crypto";
import * as fs from "fs";
import { pipeline } from "stream/promises";
import type { ApiError, Bucket, FileMetadata, Storage, StorageOptions } from "@google-cloud/storage";

/** Where a shared store lives: `gs://<bucket>/<prefix>`. */
export interface GcsLocation {
  bucket: string;
  /** Object name prefix, empty or ending in `/`. */
  prefix: string;
}

/** Parses `gs://bucket[/prefix]`, naming what is wrong with a bad one. */
export function parseGsUrl(url: string, field = "sharedStore"): GcsLocation {
  const match = /^gs:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!match) throw new Error(`${field}: expected gs://<bucket>/<prefix>, got '${url}'`);
  const [, bucket, rawPrefix = ""] = match;
  if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(bucket)) {
    throw new Error(
      `${field}: expected a bucket name of 3-222 lowercase letters, digits, '.', '_' or '-', got '${bucket}'`,
    );
  }
  const prefix = rawPrefix.replace(/\/+$/, "");
  return { bucket, prefix: prefix ? `${prefix}/` : "" };
}

/** The object fields this project reads (the JSON API's object resource has more). */
export interface GcsObject {
  name: string;
  /** Version of the object's content; preconditions compare against it. */
  generation: string;
  size: string;
  timeCreated?: string;
  /** Base64 MD5 of the content. */
  md5Hash?: string;
  /** Base64 CRC32C of the content. */
  crc32c?: string;
  /** Download URL of the content. */
  mediaLink?: string;
  /** URL of the object's metadata. */
  selfLink?: string;
  /** Custom metadata, e.g. `sha256`. */
  metadata?: Record<string, string>;
}

export interface GcsBucketOptions {
  /**
   * Base URL of the service. The library itself reads `$STORAGE_EMULATOR_HOST` (a stand-in; give it a scheme), and
   * then sends the JSON API to `$STORAGE_EMULATOR_HOST/b/…` and uploads to `…/upload/storage/v1/b/…`.
   * @default `$STORAGE_EMULATOR_HOST`, else https://storage.googleapis.com
   */
  apiEndpoint?: string;
  /** Where the credentials are read from ({@link storageCredentials}). @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Attempts after the first for an idempotent request (reads, and writes with a precondition). @default 5 */
  maxRetries?: number;
  /** Files from this size on go up as resumable uploads, in chunks. @default 16 MiB */
  resumableThreshold?: number;
  /** Bytes per request of a resumable upload (a multiple of 256 KiB): what a retry sends again. @default 16 MiB */
  chunkSize?: number;
  /** Milliseconds an HTTP request may take before it fails. @default the library's (none for most requests) */
  timeoutMs?: number;
  /**
   * Send no credentials at all, whatever `env` holds (a public bucket's objects, readable by `allUsers`): no key is
   * looked for, and no metadata server asked.
   * @default false
   */
  anonymous?: boolean;
}

const MIB = 1024 * 1024;

/**
 * The credentials Google's libraries would use, from `env`: `GOOGLE_CREDENTIALS` (what the nightly workflow and the
 * Pulumi gcp provider take: a key's JSON, or the path of a key file), else `GOOGLE_APPLICATION_CREDENTIALS` (a key
 * file), else Application Default Credentials (gcloud's ADC file, the metadata server of a GCE host).
 */
export function storageCredentials(
  env: NodeJS.ProcessEnv,
): Pick<StorageOptions, "credentials" | "keyFilename"> | undefined {
  const given = env.GOOGLE_CREDENTIALS?.trim();
  if (given?.startsWith("{")) {
    try {
      return { credentials: JSON.parse(given) as StorageOptions["credentials"] };
    } catch (err) {
      // The text is a secret: the message names only what is wrong with it.
      throw new Error(
        `GOOGLE_CREDENTIALS: expected a key as JSON or the path of a key file, got text that is not JSON (${(err as Error).message})`,
      );
    }
  }
  const keyFilename = given || env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!keyFilename) return undefined;
  if (!fs.existsSync(keyFilename)) {
    const variable = given ? "GOOGLE_CREDENTIALS" : "GOOGLE_APPLICATION_CREDENTIALS";
    throw new Error(`${variable}: expected a key file, got '${keyFilename}', which does not exist`);
  }
  return { keyFilename };
}

/**
 * One bucket through `@google-cloud/storage`: the library brings authentication, retries with backoff of idempotent
 * requests (a create is one when it carries `ifGenerationMatch`, and every write here does), resumable uploads and
 * CRC32C checks of what was uploaded and downloaded. This class adds what the project needs on top: absence as
 * undefined instead of an error, creation only if absent, and errors that name the object.
 */
export class GcsBucket {
  private readonly storageOptions: StorageOptions;
  private readonly anonymous: boolean;
  private storage?: Promise<Storage>;
  private readonly resumableThreshold: number;
  private readonly chunkSize: number;

  constructor(
    readonly name: string,
    options: GcsBucketOptions = {},
  ) {
    this.anonymous = options.anonymous ?? false;
    const credentials = this.anonymous ? undefined : storageCredentials(options.env ?? process.env);
    this.storageOptions = {
      ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
      ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
      ...credentials,
      // The library sends no credentials to an endpoint other than Google's (a stand-in) unless asked to.
      useAuthWithCustomEndpoint: credentials !== undefined,
      retryOptions: {
        // The library reads a maxRetries of 0 as its default (3): no retries is autoRetry off.
        autoRetry: options.maxRetries !== 0,
        maxRetries: options.maxRetries ?? 5,
      },
    };
    this.resumableThreshold = options.resumableThreshold ?? 16 * MIB;
    this.chunkSize = options.chunkSize ?? 16 * MIB;
  }

  /** The bucket's client. The library takes half a second to load: only a process that talks to a bucket pays. */
  private async bucket(): Promise<Bucket> {
    this.storage ??= Promise.all([
      import("@google-cloud/storage"),
      // The library's own client that adds no credentials (the library depends on google-auth-library).
      this.anonymous ? import("google-auth-library").then((auth) => new auth.PassThroughClient()) : undefined,
    ]).then(
      ([{ Storage, IdempotencyStrategy }, passThrough]) =>
        new Storage({
          ...this.storageOptions,
          ...(passThrough ? { authClient: passThrough } : {}),
          retryOptions: {
            ...this.storageOptions.retryOptions,
            idempotencyStrategy: IdempotencyStrategy.RetryConditional,
          },
        }),
    );
    return (await this.storage).bucket(this.name);
  }

  /** `gs://bucket/name`, for messages. */
  where(name: string): string {
    return `gs://${this.name}/${name}`;
  }

  /** Runs a request; a 404 is undefined, any other failure an error naming what was done to which object. */
  private async call<T>(what: string, name: string, request: () => Promise<T>): Promise<T | undefined> {
    try {
      return await request();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.failure(what, name, err);
    }
  }

  private failure(what: string, name: string, err: unknown): Error {
    const status = statusOf(err);
    return new Error(
      `${what} ${this.where(name)}: ${status ? `${status} ` : ""}${(err as Error).message}`.trim(),
    );
  }

  /** The object's metadata, or undefined when there is none. */
  async stat(name: string): Promise<GcsObject | undefined> {
    const object = (await this.bucket()).file(name);
    const [metadata] = (await this.call("stat", name, () => object.getMetadata())) ?? [];
    return metadata && objectOf(metadata);
  }

  /** The object's content, or undefined when there is none. */
  async read(name: string): Promise<Buffer | undefined> {
    const object = (await this.bucket()).file(name);
    const [content] = (await this.call("read", name, () => object.download())) ?? [];
    return content;
  }

  /** Streams the object into `file` (CRC32C checked by the library) and returns its sha256; rejects when it is absent. */
  async download(name: string, file: string): Promise<string> {
    const hash = createHash("sha256");
    const source = (await this.bucket()).file(name).createReadStream({ validation: "crc32c" });
    source.on("data", (chunk: Buffer) => hash.update(chunk));
    try {
      await pipeline(source, fs.createWriteStream(file));
    } catch (err) {
      throw this.failure("download", name, err);
    }
    return hash.digest("hex");
  }

  /**
   * Creates `name` with `content` (a buffer, or a file streamed; a resumable upload from `resumableThreshold` on) only
   * if no object of that name exists: the object, or undefined when one existed (the service answered 412). An upload
   * either finishes whole or leaves no object: the service checks the bytes against the MD5 declared with them (read
   * from the file first), and the library checks the CRC32C the service reports.
   */
  async create(
    name: string,
    content: Buffer | { file: string },
    fields: { contentType?: string; cacheControl?: string; metadata?: Record<string, string> } = {},
  ): Promise<GcsObject | undefined> {
    const size = Buffer.isBuffer(content) ? content.length : fs.statSync(content.file).size;
    const resumable = size >= this.resumableThreshold;
    const md5 = createHash("md5");
    if (Buffer.isBuffer(content)) md5.update(content);
    else await pipeline(fs.createReadStream(content.file), md5);
    const options = {
      preconditionOpts: { ifGenerationMatch: 0 },
      resumable,
      ...(resumable ? { chunkSize: this.chunkSize } : {}),
      validation: "crc32c" as const,
      metadata: { contentType: "application/octet-stream", ...fields, md5Hash: md5.digest("base64") },
    };
    const bucket = await this.bucket();
    const target = bucket.file(name);
    try {
      if (Buffer.isBuffer(content)) await target.save(content, options);
      else await bucket.upload(content.file, { ...options, destination: target });
    } catch (err) {
      if (statusOf(err) === 412) return undefined;
      throw this.failure("upload", name, err);
    }
    return objectOf(target.metadata);
  }

  /** Every object whose name starts with `prefix`, following pages; only the first `limit` when given. */
  async list(prefix: string, options: { limit?: number } = {}): Promise<GcsObject[]> {
    const bucket = await this.bucket();
    const query = options.limit
      ? { prefix, autoPaginate: false, maxResults: options.limit }
      : { prefix, autoPaginate: true };
    const [files] = (await this.call("list", `${prefix}*`, () => bucket.getFiles(query))) ?? [];
    return (files ?? []).map((f) => objectOf(f.metadata));
  }

  /** Deletes the object (only that generation, when given); false when it was not there. */
  async remove(name: string, options: { ifGenerationMatch?: string } = {}): Promise<boolean> {
    const precondition = options.ifGenerationMatch ? { ifGenerationMatch: options.ifGenerationMatch } : {};
    const object = (await this.bucket()).file(name);
    return (await this.call("delete", name, () => object.delete(precondition))) !== undefined;
  }
}

/** The fields of an object resource this project reads (the library gives a resumable upload's size as a number). */
function objectOf(metadata: FileMetadata): GcsObject {
  return {
    name: String(metadata.name),
    generation: String(metadata.generation),
    size: String(metadata.size),
    timeCreated: metadata.timeCreated,
    md5Hash: metadata.md5Hash,
    crc32c: metadata.crc32c,
    mediaLink: metadata.mediaLink,
    selfLink: metadata.selfLink,
    metadata: metadata.metadata as Record<string, string> | undefined,
  };
}

/** The HTTP status of a failed request, if the service answered (a resumable upload's error is gaxios's own). */
function statusOf(err: unknown): number | undefined {
  const failure = err as ApiError & { status?: number; response?: { status?: number } };
  const status = failure.response?.status ?? failure.status ?? Number(failure.code);
  return Number.isInteger(status) && status >= 100 ? status : undefined;
}
