// An in-process stand-in for the part of the Cloud Storage JSON API the shared store uses (see docs/scale-out.md):
// objects insert (uploadType=media), get (metadata, alt=media), list (prefix, pages), rewrite and delete, each with
// the ifGenerationMatch precondition, bearer-token check and the API's JSON errors.
import * as http from "http";
import { AddressInfo } from "net";

interface StoredObject {
  content: Buffer;
  generation: number;
  timeCreated: string;
}

export interface StandInOptions {
  /** Bearer token every request must carry. @default "stand-in-token" */
  token?: string;
  /** Objects per list page (small, so paging is exercised). @default 3 */
  pageSize?: number;
}

export class GcsStandIn {
  /** Bucket → object name → object. */
  readonly buckets = new Map<string, Map<string, StoredObject>>();
  /** Every request as `METHOD path?query`, for assertions. */
  readonly requests: string[] = [];
  /** Called before each request is answered; may delay or throw to simulate a fault. */
  beforeRequest?: (method: string, url: URL) => Promise<void> | void;
  readonly token: string;
  private readonly pageSize: number;
  private readonly server: http.Server;
  private generation = 1000;

  constructor(options: StandInOptions = {}) {
    this.token = options.token ?? "stand-in-token";
    this.pageSize = options.pageSize ?? 3;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) =>
        send(res, 500, { error: { code: 500, message: err.message } }),
      );
    });
  }

  /** Listens on 127.0.0.1 and returns the endpoint (what STORAGE_EMULATOR_HOST is set to). */
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Object names in a bucket, sorted. */
  names(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.keys() ?? [])].sort();
  }

  private bucket(name: string): Map<string, StoredObject> {
    let bucket = this.buckets.get(name);
    if (!bucket) this.buckets.set(name, (bucket = new Map()));
    return bucket;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const method = req.method ?? "GET";
    this.requests.push(`${method} ${url.pathname}${url.search}`);
    const body = await readBody(req);
    await this.beforeRequest?.(method, url);
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return send(res, 401, { error: { code: 401, message: "Invalid Credentials" } });
    }
    const segments = url.pathname.split("/").map(decodeURIComponent);
    const q = url.searchParams;
    const precondition = (existing: StoredObject | undefined): boolean => {
      const want = q.get("ifGenerationMatch");
      if (want === null) return true;
      return want === "0" ? existing === undefined : existing?.generation === Number(want);
    };
    const failed = () =>
      send(res, 412, {
        error: { code: 412, message: "At least one of the pre-conditions you specified did not hold." },
      });

    // POST /upload/storage/v1/b/<bucket>/o?uploadType=media&name=<name>
    if (method === "POST" && segments[1] === "upload" && segments[6] === "o" && segments.length === 7) {
      if (q.get("uploadType") !== "media")
        return send(res, 400, { error: { code: 400, message: "uploadType" } });
      const name = q.get("name") ?? "";
      if (!precondition(this.bucket(segments[5]).get(name))) return failed();
      return send(res, 200, this.store(segments[5], name, body));
    }
    if (segments[1] !== "storage" || segments[2] !== "v1" || segments[3] !== "b" || segments[5] !== "o") {
      return send(res, 404, { error: { code: 404, message: `no such API: ${url.pathname}` } });
    }
    const objects = this.bucket(segments[4]);
    // GET /storage/v1/b/<bucket>/o?prefix=&pageToken=
    if (method === "GET" && segments.length === 6) {
      const prefix = q.get("prefix") ?? "";
      const all = this.names(segments[4]).filter((n) => n.startsWith(prefix));
      const start = Number(q.get("pageToken") ?? "0");
      const page = all.slice(start, start + this.pageSize);
      const next = start + this.pageSize < all.length ? String(start + this.pageSize) : undefined;
      return send(res, 200, {
        kind: "storage#objects",
        items: page.map((n) => this.resource(segments[4], n, objects.get(n) as StoredObject)),
        ...(next ? { nextPageToken: next } : {}),
      });
    }
    const name = segments[6];
    const existing = objects.get(name);
    // POST /storage/v1/b/<bucket>/o/<src>/rewriteTo/b/<bucket>/o/<dst>
    if (method === "POST" && segments[7] === "rewriteTo" && segments[10] === "o") {
      if (!existing) return send(res, 404, { error: { code: 404, message: `No such object: ${name}` } });
      const target = this.bucket(segments[9]);
      if (!precondition(target.get(segments[11]))) return failed();
      const resource = this.store(segments[9], segments[11], existing.content);
      const size = String(existing.content.length);
      return send(res, 200, {
        kind: "storage#rewriteResponse",
        done: true,
        totalBytesRewritten: size,
        objectSize: size,
        resource,
      });
    }
    if (segments.length !== 7)
      return send(res, 404, { error: { code: 404, message: `no such API: ${url.pathname}` } });
    if (!existing)
      return send(res, 404, { error: { code: 404, message: `No such object: ${segments[4]}/${name}` } });
    if (!precondition(existing)) return failed();
    if (method === "GET") {
      if (q.get("alt") === "media") {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        return void res.end(existing.content);
      }
      return send(res, 200, this.resource(segments[4], name, existing));
    }
    if (method === "DELETE") {
      objects.delete(name);
      res.writeHead(204);
      return void res.end();
    }
    send(res, 405, { error: { code: 405, message: `${method} not supported by the stand-in` } });
  }

  private store(bucket: string, name: string, content: Buffer): Record<string, string> {
    const object = { content, generation: ++this.generation, timeCreated: new Date().toISOString() };
    this.bucket(bucket).set(name, object);
    return this.resource(bucket, name, object);
  }

  private resource(bucket: string, name: string, object: StoredObject): Record<string, string> {
    return {
      kind: "storage#object",
      bucket,
      name,
      generation: String(object.generation),
      size: String(object.content.length),
      timeCreated: object.timeCreated,
    };
  }
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
