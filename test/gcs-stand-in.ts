// A stand-in for Cloud Storage on loopback, speaking as much of the JSON API as `@google-cloud/storage` uses here
// (see docs/scale-out.md): objects get (metadata, alt=media with x-goog-hash), list (prefix, pages), delete, and
// insert as media, multipart and resumable uploads (session, Content-Range chunks, status queries), each with the
// ifGenerationMatch precondition; CRC32C and MD5 of every object, checked against the hashes an upload declares; the
// API's JSON errors; and, when asked, bearer tokens issued by an STS token endpoint for an external-account key.
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as path from "path";

export interface StoredObject {
  content: Buffer;
  generation: number;
  timeCreated: string;
  contentType: string;
  cacheControl?: string;
  /** Custom metadata (`x-goog-meta-*`). */
  metadata?: Record<string, string>;
}

interface UploadSession {
  bucket: string;
  name: string;
  /** The precondition the session was started with. */
  ifGenerationMatch: string | null;
  fields: Partial<StoredObject>;
  /** The hashes declared when the session was started. */
  declared: { crc32c?: string; md5?: string };
  received: Buffer[];
  size: number;
  done?: Record<string, unknown>;
}

export interface StandInOptions {
  /** Objects per list page (small, so paging is exercised). @default 3 */
  pageSize?: number;
}

/** A fault for one request: answered with `status` and this message, before the stand-in acts on it. */
export type Fault = { status: number; message: string } | undefined;

export class GcsStandIn {
  /** Bucket → object name → object. */
  readonly buckets = new Map<string, Map<string, StoredObject>>();
  /** Every request as `METHOD path?query` (query decoded), for assertions. */
  readonly requests: string[] = [];
  /** Called before each request is acted on; a fault it returns is the answer (to simulate a failure). */
  beforeRequest?: (method: string, url: URL) => Fault;
  /** When set, every API request must carry a bearer token the token endpoint issued. @default false */
  requireAuth = false;
  /** When set, the first byte of every upload is flipped on arrival, as a fault on the way would. @default false */
  corruptUploads = false;
  private readonly issuedTokens = new Set<string>();
  private readonly subjectToken = randomBytes(16).toString("hex");
  private readonly sessions = new Map<string, UploadSession>();
  private readonly pageSize: number;
  private readonly server: http.Server;
  private endpoint = "";
  private generation = 1000;

  constructor(options: StandInOptions = {}) {
    this.pageSize = options.pageSize ?? 3;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => fail(res, 500, err.message));
    });
  }

  /** Listens on 127.0.0.1 and returns the endpoint (what STORAGE_EMULATOR_HOST is set to). */
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Object names in a bucket, sorted. */
  names(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.keys() ?? [])].sort();
  }

  /** Empties every bucket, forgets the requests and sessions, removes any fault and the auth requirement. */
  reset(): void {
    this.buckets.clear();
    this.sessions.clear();
    this.requests.length = 0;
    this.beforeRequest = undefined;
    this.requireAuth = false;
    this.corruptUploads = false;
  }

  /**
   * A workload-identity (external account) key whose token exchange goes to this stand-in, as Google's auth library
   * reads it from GOOGLE_CREDENTIALS or GOOGLE_APPLICATION_CREDENTIALS; its subject token is written into `dir`.
   */
  externalAccountKey(dir: string): Record<string, unknown> {
    const subjectTokenFile = path.join(dir, "subject-token");
    fs.writeFileSync(subjectTokenFile, this.subjectToken);
    return {
      type: "external_account",
      audience:
        "//iam.googleapis.com/projects/0/locations/global/workloadIdentityPools/stand-in/providers/test",
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      token_url: `${this.endpoint}/sts/v1/token`,
      credential_source: { file: subjectTokenFile },
    };
  }

  private bucket(name: string): Map<string, StoredObject> {
    let bucket = this.buckets.get(name);
    if (!bucket) this.buckets.set(name, (bucket = new Map()));
    return bucket;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const method = req.method ?? "GET";
    this.requests.push(`${method} ${decodeURIComponent(url.pathname)}${decodeURIComponent(url.search)}`);
    const body = await readBody(req);
    const fault = this.beforeRequest?.(method, url);
    if (fault) return fail(res, fault.status, fault.message);
    if (method === "POST" && url.pathname === "/sts/v1/token") return this.exchangeToken(body, res);
    if (this.requireAuth) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!token || !this.issuedTokens.has(token)) return fail(res, 401, "Invalid Credentials");
    }
    const q = url.searchParams;
    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    if (upload) return this.upload(decodeURIComponent(upload[1]), method, req, body, q, res);
    // The library puts the JSON API under $STORAGE_EMULATOR_HOST itself when that is set, else under /storage/v1.
    const api = /^(?:\/storage\/v1)?\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(url.pathname);
    if (!api) return fail(res, 404, `no such API: ${url.pathname}`);
    const bucketName = decodeURIComponent(api[1]);
    const objects = this.bucket(bucketName);
    if (api[2] === undefined) {
      if (method !== "GET") return fail(res, 405, `${method} on a bucket's objects is not supported`);
      return this.list(bucketName, q, res);
    }
    const name = decodeURIComponent(api[2]);
    const existing = objects.get(name);
    if (!existing) return fail(res, 404, `No such object: ${bucketName}/${name}`);
    if (!holds(q.get("ifGenerationMatch"), existing)) return preconditionFailed(res);
    if (method === "GET" && q.get("alt") === "media") {
      res.writeHead(200, {
        "content-type": existing.contentType,
        "x-goog-hash": `crc32c=${crc32cOf(existing.content)},md5=${md5Of(existing.content)}`,
        "x-goog-stored-content-encoding": "identity",
        "x-goog-generation": String(existing.generation),
      });
      return void res.end(existing.content);
    }
    if (method === "GET") return send(res, 200, resource(this.endpoint, bucketName, name, existing));
    if (method === "DELETE") {
      objects.delete(name);
      res.writeHead(204);
      return void res.end();
    }
    fail(res, 405, `${method} on an object is not supported by the stand-in`);
  }

  private list(bucket: string, q: URLSearchParams, res: http.ServerResponse): void {
    const prefix = q.get("prefix") ?? "";
    const all = this.names(bucket).filter((n) => n.startsWith(prefix));
    const start = Number(q.get("pageToken") ?? "0");
    const size = Math.min(this.pageSize, Number(q.get("maxResults") ?? this.pageSize));
    const next = start + size < all.length ? String(start + size) : undefined;
    const objects = this.bucket(bucket);
    send(res, 200, {
      kind: "storage#objects",
      items: all
        .slice(start, start + size)
        .map((n) => resource(this.endpoint, bucket, n, objects.get(n) as StoredObject)),
      ...(next ? { nextPageToken: next } : {}),
    });
  }

  /** POST …/upload/storage/v1/b/<bucket>/o (media, multipart, resumable start) and PUT to a resumable session. */
  private upload(
    bucket: string,
    method: string,
    req: http.IncomingMessage,
    body: Buffer,
    q: URLSearchParams,
    res: http.ServerResponse,
  ): void {
    const uploadType = q.get("uploadType");
    if (method === "PUT" && uploadType === "resumable") return this.resumableChunk(req, body, q, res);
    if (method !== "POST") return fail(res, 405, `${method} on the upload endpoint is not supported`);
    if (uploadType === "media") {
      const fields = { contentType: req.headers["content-type"] ?? "application/octet-stream" };
      return this.create(bucket, q.get("name") ?? "", q.get("ifGenerationMatch"), fields, body, {}, res);
    }
    if (uploadType === "multipart") {
      const parts = multipartParts(body, req.headers["content-type"] ?? "");
      if (parts.length !== 2) return fail(res, 400, `expected 2 multipart parts, got ${parts.length}`);
      const declared = JSON.parse(parts[0].body.toString("utf8")) as ObjectFields;
      const name = q.get("name") ?? declared.name ?? "";
      const fields = { ...objectFields(declared), contentType: parts[1].contentType };
      const hashes = { crc32c: declared.crc32c, md5: declared.md5Hash };
      return this.create(bucket, name, q.get("ifGenerationMatch"), fields, parts[1].body, hashes, res);
    }
    if (uploadType === "resumable") {
      const declared = (body.length > 0 ? JSON.parse(body.toString("utf8")) : {}) as ObjectFields;
      const name = q.get("name") ?? declared.name ?? "";
      const ifGenerationMatch = q.get("ifGenerationMatch");
      if (!holds(ifGenerationMatch, this.bucket(bucket).get(name))) return preconditionFailed(res);
      const id = randomBytes(12).toString("hex");
      const contentType = String(req.headers["x-upload-content-type"] ?? "application/octet-stream");
      this.sessions.set(id, {
        bucket,
        name,
        ifGenerationMatch,
        fields: { ...objectFields(declared), contentType },
        declared: { crc32c: declared.crc32c, md5: declared.md5Hash },
        received: [],
        size: 0,
      });
      const location = `${this.endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}`;
      res.writeHead(200, { location, "content-length": "0" });
      return void res.end();
    }
    fail(res, 400, `uploadType '${uploadType}' is not supported`);
  }

  /** A chunk of a resumable upload (`Content-Range: bytes a-b/total`), or a status query (`bytes *` then the total). */
  private resumableChunk(
    req: http.IncomingMessage,
    body: Buffer,
    q: URLSearchParams,
    res: http.ServerResponse,
  ): void {
    const session = this.sessions.get(q.get("upload_id") ?? "");
    if (!session) return fail(res, 404, "no such upload session");
    if (session.done) return send(res, 200, session.done);
    const range = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(String(req.headers["content-range"] ?? ""));
    if (!range) return fail(res, 400, `bad Content-Range '${req.headers["content-range"]}'`);
    if (range[1] !== undefined) {
      const first = Number(range[1]);
      if (first > session.size) return fail(res, 400, `chunk starts at ${first}, past ${session.size}`);
      if (Number(range[2]) - first + 1 !== body.length)
        return fail(res, 400, "Content-Range and body disagree");
      // Bytes the stand-in has already (a resent chunk) are skipped, as the service does.
      const fresh = body.subarray(session.size - first);
      session.received.push(fresh);
      session.size += fresh.length;
    }
    const total = range[3] === "*" ? undefined : Number(range[3]);
    if (total === undefined || session.size < total) {
      res.writeHead(308, session.size > 0 ? { range: `bytes=0-${session.size - 1}` } : {});
      return void res.end();
    }
    this.sessions.delete(q.get("upload_id") ?? "");
    const content = Buffer.concat(session.received);
    const hashes = { ...session.declared, ...parseGoogHash(req.headers["x-goog-hash"]) };
    this.create(
      session.bucket,
      session.name,
      session.ifGenerationMatch,
      session.fields,
      content,
      hashes,
      res,
    );
  }

  /** Creates an object if its precondition holds and its content matches the hashes the client declared. */
  private create(
    bucket: string,
    name: string,
    ifGenerationMatch: string | null,
    fields: Partial<StoredObject>,
    content: Buffer,
    declared: { crc32c?: string; md5?: string },
    res: http.ServerResponse,
  ): void {
    if (!name) return fail(res, 400, "an object name is required");
    if (this.corruptUploads && content.length > 0) content[0] ^= 0xff;
    if (declared.crc32c && declared.crc32c !== crc32cOf(content))
      return fail(res, 400, 'Provided CRC32C "' + declared.crc32c + "\" doesn't match calculated CRC32C");
    if (declared.md5 && declared.md5 !== md5Of(content))
      return fail(res, 400, 'Provided MD5 hash "' + declared.md5 + "\" doesn't match calculated MD5 hash");
    if (!holds(ifGenerationMatch, this.bucket(bucket).get(name))) return preconditionFailed(res);
    const object: StoredObject = {
      contentType: "application/octet-stream",
      ...fields,
      content,
      generation: ++this.generation,
      timeCreated: new Date().toISOString(),
    };
    this.bucket(bucket).set(name, object);
    send(res, 200, resource(this.endpoint, bucket, name, object));
  }

  /** STS token exchange (RFC 8693): the subject token of {@link externalAccountKey} for a bearer token. */
  private exchangeToken(body: Buffer, res: http.ServerResponse): void {
    const form = new URLSearchParams(body.toString("utf8"));
    if (form.get("subject_token") !== this.subjectToken)
      return send(res, 400, { error: "invalid_grant", error_description: "unknown subject token" });
    const token = `stand-in-${randomBytes(16).toString("hex")}`;
    this.issuedTokens.add(token);
    send(res, 200, {
      access_token: token,
      issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
      token_type: "Bearer",
      expires_in: 3600,
    });
  }
}

/** The object fields an upload may declare, as the JSON API names them. */
interface ObjectFields {
  name?: string;
  cacheControl?: string;
  metadata?: Record<string, string>;
  crc32c?: string;
  md5Hash?: string;
}

function objectFields(declared: ObjectFields): Partial<StoredObject> {
  return { cacheControl: declared.cacheControl, metadata: declared.metadata };
}

/** Whether an `ifGenerationMatch` precondition holds (`0`: the object must not exist). */
function holds(want: string | null, existing: StoredObject | undefined): boolean {
  if (want === null) return true;
  return want === "0" ? existing === undefined : existing?.generation === Number(want);
}

function resource(
  endpoint: string,
  bucket: string,
  name: string,
  object: StoredObject,
): Record<string, unknown> {
  const path = `b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`;
  return {
    kind: "storage#object",
    id: `${bucket}/${name}/${object.generation}`,
    bucket,
    name,
    generation: String(object.generation),
    metageneration: "1",
    size: String(object.content.length),
    contentType: object.contentType,
    ...(object.cacheControl ? { cacheControl: object.cacheControl } : {}),
    ...(object.metadata ? { metadata: object.metadata } : {}),
    timeCreated: object.timeCreated,
    updated: object.timeCreated,
    md5Hash: md5Of(object.content),
    crc32c: crc32cOf(object.content),
    selfLink: `${endpoint}/storage/v1/${path}`,
    mediaLink: `${endpoint}/download/storage/v1/${path}?generation=${object.generation}&alt=media`,
  };
}

function md5Of(content: Buffer): string {
  return createHash("md5").update(content).digest("base64");
}

/** CRC32C (Castagnoli), base64 of the big-endian value: how the JSON API spells it. Independent of the library's. */
function crc32cOf(content: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of content) crc = CRC32C_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

const CRC32C_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function parseGoogHash(header: string | string[] | undefined): { crc32c?: string; md5?: string } {
  const pairs = [header ?? []].flat().flatMap((h) => h.split(","));
  const value = (kind: string) =>
    pairs
      .find((p) => p.trim().startsWith(`${kind}=`))
      ?.trim()
      .slice(kind.length + 1);
  return Object.fromEntries(
    Object.entries({ crc32c: value("crc32c"), md5: value("md5") }).filter(([, v]) => v !== undefined),
  );
}

/** The parts of a multipart/related body: each part's content type and bytes. */
function multipartParts(body: Buffer, contentType: string): { contentType: string; body: Buffer }[] {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) return [];
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: { contentType: string; body: Buffer }[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === "--") break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    const part = body.subarray(start + 2, next - 2); // without the CRLFs around it
    const headerEnd = part.indexOf("\r\n\r\n");
    const headers = part.subarray(0, headerEnd).toString("utf8");
    parts.push({
      contentType: /^content-type:\s*(.+)$/im.exec(headers)?.[1].trim() ?? "application/octet-stream",
      body: part.subarray(headerEnd + 4),
    });
    at = next;
  }
  return parts;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function fail(res: http.ServerResponse, status: number, message: string): void {
  send(res, status, { error: { code: status, message, errors: [{ message, reason: "standIn" }] } });
}

function preconditionFailed(res: http.ServerResponse): void {
  fail(res, 412, "At least one of the pre-conditions you specified did not hold.");
}
