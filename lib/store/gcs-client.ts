import { createHash } from "crypto";
import * as fs from "fs";
import { Readable } from "stream";
import { pipeline } from "stream/promises";
import { ReadableStream as WebReadableStream } from "stream/web";

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

/** The object fields this project reads (the JSON API's object resource has many more). */
export interface GcsObject {
  name: string;
  /** Version of the object's content; preconditions compare against it. */
  generation: string;
  size: string;
  timeCreated?: string;
}

/** A failed request: the method, the object and the service's answer. Never carries the access token. */
export class GcsError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface GcsClientOptions {
  /**
   * Base URL of the JSON API; tests point it at a local stand-in.
   * @default `$STORAGE_EMULATOR_HOST` (with `http://` added when it has no scheme), else https://storage.googleapis.com
   */
  endpoint?: string;
  /**
   * OAuth2 access token sent as a bearer token.
   * @default `$GOOGLE_OAUTH_ACCESS_TOKEN`
   */
  token?: string;
}

/** The API endpoint a client uses when none is given. */
export function defaultGcsEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const emulator = env.STORAGE_EMULATOR_HOST;
  if (!emulator) return "https://storage.googleapis.com";
  return /^https?:\/\//.test(emulator) ? emulator.replace(/\/+$/, "") : `http://${emulator}`;
}

/**
 * The subset of the Cloud Storage JSON API the shared store uses, over plain HTTPS: objects insert (media upload),
 * get (metadata and content), list, rewrite and delete, with generation preconditions.
 */
export class GcsClient {
  private readonly endpoint: string;
  private readonly token: string | undefined;

  constructor(
    readonly bucket: string,
    options: GcsClientOptions = {},
  ) {
    this.endpoint = options.endpoint ?? defaultGcsEndpoint();
    this.token = options.token ?? process.env.GOOGLE_OAUTH_ACCESS_TOKEN;
  }

  private objectUrl(name: string, suffix = ""): string {
    return `${this.endpoint}/storage/v1/b/${encodeURIComponent(this.bucket)}/o/${encodeURIComponent(name)}${suffix}`;
  }

  private async request(
    method: string,
    url: string,
    what: string,
    init: { body?: Buffer | Readable; contentType?: string; ok404?: boolean } = {},
  ): Promise<Response | undefined> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (init.contentType) headers["content-type"] = init.contentType;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: init.body instanceof Readable ? (Readable.toWeb(init.body) as ReadableStream) : init.body,
        ...(init.body instanceof Readable ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (err) {
      const cause = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
      throw new GcsError(0, `${what}: could not reach ${this.endpoint}: ${cause}`);
    }
    if (response.status === 404 && init.ok404) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) {
      const text = await response.text();
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message;
      } catch {
        // not the API's JSON error: keep the text
      }
      throw new GcsError(response.status, `${what}: ${response.status} ${response.statusText}: ${message}`);
    }
    return response;
  }

  private where(name: string): string {
    return `gs://${this.bucket}/${name}`;
  }

  /** The object's metadata, or undefined when there is none. */
  async stat(name: string): Promise<GcsObject | undefined> {
    const response = await this.request("GET", this.objectUrl(name), `stat ${this.where(name)}`, {
      ok404: true,
    });
    return response ? ((await response.json()) as GcsObject) : undefined;
  }

  /** The object's content, or undefined when there is none. */
  async read(name: string): Promise<Buffer | undefined> {
    const response = await this.request(
      "GET",
      this.objectUrl(name, "?alt=media"),
      `read ${this.where(name)}`,
      {
        ok404: true,
      },
    );
    return response ? Buffer.from(await response.arrayBuffer()) : undefined;
  }

  /** Streams the object into `file` and returns its sha256; rejects (leaving a partial file) on a missing object. */
  async download(name: string, file: string): Promise<string> {
    const response = await this.request(
      "GET",
      this.objectUrl(name, "?alt=media"),
      `download ${this.where(name)}`,
    );
    const hash = createHash("sha256");
    const body = Readable.fromWeb(response?.body as WebReadableStream<Uint8Array>);
    body.on("data", (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, fs.createWriteStream(file));
    return hash.digest("hex");
  }

  /**
   * Uploads `content` (a buffer, or a file path streamed) as `name`. `ifGenerationMatch: "0"` creates it only if it
   * does not exist (a {@link GcsError} with status 412 otherwise).
   */
  async upload(
    name: string,
    content: Buffer | { file: string },
    options: { ifGenerationMatch?: string } = {},
  ): Promise<GcsObject> {
    const query = new URLSearchParams({ uploadType: "media", name });
    if (options.ifGenerationMatch !== undefined) query.set("ifGenerationMatch", options.ifGenerationMatch);
    const url = `${this.endpoint}/upload/storage/v1/b/${encodeURIComponent(this.bucket)}/o?${query.toString()}`;
    const response = await this.request("POST", url, `upload ${this.where(name)}`, {
      body: Buffer.isBuffer(content) ? content : fs.createReadStream(content.file),
      contentType: "application/octet-stream",
    });
    return (await (response as Response).json()) as GcsObject;
  }

  /**
   * Copies `source` to `destination` inside the bucket (objects.rewrite, repeated until done, so large objects work).
   * With `ifGenerationMatch: "0"` the destination is created only if it does not exist: returns undefined when it did.
   */
  async copy(
    source: string,
    destination: string,
    options: { ifGenerationMatch?: string } = {},
  ): Promise<GcsObject | undefined> {
    const bucket = encodeURIComponent(this.bucket);
    let token: string | undefined;
    for (;;) {
      const query = new URLSearchParams();
      if (options.ifGenerationMatch !== undefined) query.set("ifGenerationMatch", options.ifGenerationMatch);
      if (token) query.set("rewriteToken", token);
      const url = this.objectUrl(
        source,
        `/rewriteTo/b/${bucket}/o/${encodeURIComponent(destination)}?${query}`,
      );
      let response: Response | undefined;
      try {
        response = await this.request("POST", url, `copy ${this.where(source)} to ${destination}`, {
          body: Buffer.from("{}"),
          contentType: "application/json",
        });
      } catch (err) {
        if (err instanceof GcsError && err.status === 412 && options.ifGenerationMatch === "0")
          return undefined;
        throw err;
      }
      const result = (await (response as Response).json()) as {
        done: boolean;
        rewriteToken?: string;
        resource?: GcsObject;
      };
      if (result.done && result.resource) return result.resource;
      token = result.rewriteToken;
      if (!token)
        throw new GcsError(0, `copy ${this.where(source)}: the service is not done and gave no token`);
    }
  }

  /** Every object whose name starts with `prefix`, following pages. */
  async list(prefix: string): Promise<GcsObject[]> {
    const out: GcsObject[] = [];
    let pageToken: string | undefined;
    do {
      const query = new URLSearchParams({ prefix });
      if (pageToken) query.set("pageToken", pageToken);
      const url = `${this.endpoint}/storage/v1/b/${encodeURIComponent(this.bucket)}/o?${query.toString()}`;
      const response = await this.request("GET", url, `list ${this.where(prefix)}*`);
      const page = (await (response as Response).json()) as { items?: GcsObject[]; nextPageToken?: string };
      out.push(...(page.items ?? []));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Deletes the object (only that generation, when given); false when it was not there. */
  async remove(name: string, options: { ifGenerationMatch?: string } = {}): Promise<boolean> {
    const suffix = options.ifGenerationMatch ? `?ifGenerationMatch=${options.ifGenerationMatch}` : "";
    const response = await this.request(
      "DELETE",
      this.objectUrl(name, suffix),
      `delete ${this.where(name)}`,
      {
        ok404: true,
      },
    );
    return response !== undefined;
  }
}
