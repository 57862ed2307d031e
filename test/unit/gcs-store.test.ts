import * as assert from "assert";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { sha256 } from "../../lib/keys";
import { GcsStore, GcsStoreOptions } from "../../lib/store/gcs";
import { GcsBucket, GcsBucketOptions, parseGsUrl } from "../../lib/store/gcs-bucket";
import { LocalStore } from "../../lib/store/local";
import { GcsStandIn } from "../gcs-stand-in";
import { tempDir } from "../helpers";
import { info, storeContract } from "../store-contract";

const BUCKET = "antidote-test";
const URL = `gs://${BUCKET}/shared`;
const standIn = new GcsStandIn();
let endpoint = "";

before(async () => {
  endpoint = await standIn.start();
});
after(() => standIn.stop());

/** A store on the stand-in through the library, without credentials (the library sends none to a stand-in). */
function open(dir: string, options: GcsStoreOptions = {}): GcsStore {
  return new GcsStore(parseGsUrl(URL), new LocalStore(dir), {
    apiEndpoint: endpoint,
    env: {},
    progress: () => undefined,
    ...options,
  });
}

function bucket(options: GcsBucketOptions = {}): GcsBucket {
  return new GcsBucket(BUCKET, { apiEndpoint: endpoint, env: {}, ...options });
}

storeContract({
  name: "GcsStore (stand-in bucket)",
  open,
  // Child processes reach the stand-in the way a build host is pointed at one: the library reads the variable.
  env: () => ({ ...process.env, ANTIDOTE_SHARED_STORE: URL, STORAGE_EMULATOR_HOST: endpoint }),
  sharedObjects: () => standIn.names(BUCKET),
  reset: () => standIn.reset(),
});

const writeOut = (content: string) => async (dir: string) => {
  fs.writeFileSync(path.join(dir, "out.txt"), content);
  fs.mkdirSync(path.join(dir, "sub"));
  fs.writeFileSync(path.join(dir, "sub", "extra.txt"), `${content} (extra)`);
  return { primary: "out.txt", outputs: { content } };
};

/** The stand-in's requests that write (uploads, resumable chunks, deletes). */
const writes = () => standIn.requests.filter((r) => !r.startsWith("GET"));

describe("GcsStore", () => {
  beforeEach(() => standIn.reset());

  it("parses gs://bucket/prefix and names what is wrong with a bad one", () => {
    assert.deepStrictEqual(parseGsUrl("gs://b-1/a/b/"), { bucket: "b-1", prefix: "a/b/" });
    assert.deepStrictEqual(parseGsUrl("gs://bucket"), { bucket: "bucket", prefix: "" });
    assert.throws(
      () => parseGsUrl("s3://x/y"),
      /sharedStore: expected gs:\/\/<bucket>\/<prefix>, got 's3:\/\/x\/y'/,
    );
    assert.throws(() => parseGsUrl("gs://Bad_Bucket/p"), /expected a bucket name/);
  });

  it("lays an artifact out as content-addressed files and a key record created last, every write a create-if-absent", async () => {
    const key = sha256("layout");
    await open(tempDir("gcs-a")).put(key, info, writeOut("hello"));
    assert.deepStrictEqual(standIn.names(BUCKET), [
      `shared/artifacts/${key}.json`,
      `shared/files/${sha256("hello")}`,
      `shared/files/${sha256("hello (extra)")}`,
      `shared/logs/${key}.log`,
    ]);
    const uploads = writes();
    assert.strictEqual(uploads.length, 4, uploads.join("\n"));
    assert.match(uploads[3], new RegExp(`name=shared/artifacts/${key}\\.json`), "the record goes last");
    for (const upload of uploads) {
      // No overwrite and no delete: a host needs only the right to create and read objects.
      assert.match(upload, /^POST \/upload\/storage\/v1\/b\/antidote-test\/o\?.*ifGenerationMatch=0/);
    }
    const record = standIn.buckets.get(BUCKET)?.get(`shared/artifacts/${key}.json`);
    assert.strictEqual(record?.contentType, "application/json");
  });

  it("asks to create only objects that are absent (creating onto an existing name would need the right to delete)", async () => {
    const key = sha256("looked-up");
    const objects = new Map(
      [
        `shared/files/${sha256("seen")}`,
        `shared/files/${sha256("seen (extra)")}`,
        `shared/logs/${key}.log`,
      ].map((name) => [
        name,
        {
          content: Buffer.from("x"),
          generation: 1,
          timeCreated: new Date().toISOString(),
          contentType: "text/plain",
        },
      ]),
    );
    standIn.buckets.set(BUCKET, objects);
    await open(tempDir("gcs-a")).put(key, info, writeOut("seen"));
    const uploads = writes();
    assert.strictEqual(uploads.length, 1, uploads.join("\n"));
    assert.match(uploads[0], new RegExp(`name=shared/artifacts/${key}\\.json`));
  });

  it("gives another host the artifact by key, every file checked by sha256, without building", async () => {
    const key = sha256("fetch");
    const built = await open(tempDir("gcs-a")).put(key, info, writeOut("from a"));
    const other = open(tempDir("gcs-b"));
    const fetched = await other.get(key);
    assert.ok(fetched);
    assert.deepStrictEqual(fetched.meta.files, built.artifact.meta.files);
    assert.strictEqual(fs.readFileSync(path.join(fetched.dir, "sub", "extra.txt"), "utf8"), "from a (extra)");
    assert.match(
      fs.readFileSync(fetched.meta.log, "utf8"),
      /# test-step \(test\)/,
      "the build log came along",
    );
    const again = await other.put(key, info, async () => {
      throw new Error("must not build");
    });
    assert.strictEqual(again.cached, true);
    assert.strictEqual((await other.readRef("test-step"))?.key, key);
  });

  it("refuses a corrupt object in the bucket, naming it, and keeps nothing of it in the cache", async () => {
    const key = sha256("corrupt");
    await open(tempDir("gcs-a")).put(key, info, writeOut("good"));
    const name = `shared/files/${sha256("good")}`;
    const object = standIn.buckets.get(BUCKET)?.get(name);
    assert.ok(object);
    object.content = Buffer.from("evil");
    const cacheDir = tempDir("gcs-b");
    await assert.rejects(
      open(cacheDir).get(key),
      new RegExp(`${name} \\(file 'out.txt' of ${key}\\).*corrupt`),
    );
    assert.strictEqual(await new LocalStore(cacheDir).has(key), false);
  });

  it("two hosts racing on a key: exactly one record wins and every host then fetches that one", async () => {
    const key = sha256("race-hosts");
    const [a, b] = await Promise.all([
      open(tempDir("gcs-a")).put(key, info, writeOut("a")),
      open(tempDir("gcs-b")).put(key, info, writeOut("b")),
    ]);
    assert.deepStrictEqual([a.cached, b.cached], [false, false], "both built (no lock spans hosts)");
    const records = standIn.names(BUCKET).filter((n) => n.includes("/artifacts/"));
    assert.strictEqual(records.length, 1);
    const third = await open(tempDir("gcs-c")).get(key);
    assert.ok(third);
    const content = fs.readFileSync(path.join(third.dir, "out.txt"), "utf8");
    assert.ok(["a", "b"].includes(content));
    assert.strictEqual(third.meta.outputs.content, content, "files and record come from the same build");
  });

  it("retries the record's conditional create after a 503, and it lands once", async () => {
    const key = sha256("retried");
    let refused = 0;
    standIn.beforeRequest = (_method, url) => {
      const record = url.searchParams.get("name")?.endsWith(`artifacts/${key}.json`);
      return record && refused++ === 0 ? { status: 503, message: "backend unavailable" } : undefined;
    };
    await open(tempDir("gcs-a")).put(key, info, writeOut("retried"));
    assert.strictEqual(refused, 2, "answered 503 once, then accepted");
    assert.ok(standIn.names(BUCKET).includes(`shared/artifacts/${key}.json`));
  });

  it("an upload refused past its retries leaves no record, and the next put uploads it from the cache", async () => {
    const key = sha256("cut");
    const cache = tempDir("gcs-a");
    standIn.beforeRequest = (_method, url) =>
      url.searchParams.get("name")?.endsWith(`artifacts/${key}.json`)
        ? { status: 503, message: "backend unavailable" }
        : undefined;
    await assert.rejects(
      open(cache, { maxRetries: 1 }).put(key, info, writeOut("cut")),
      new RegExp(`upload gs://antidote-test/shared/artifacts/${key}\\.json: 503`),
    );
    assert.deepStrictEqual(
      standIn.names(BUCKET).filter((n) => n.includes("/artifacts/")),
      [],
    );
    standIn.beforeRequest = undefined;
    const retried = await open(cache).put(key, info, async () => {
      throw new Error("must not build: the cache has it");
    });
    assert.strictEqual(retried.cached, true);
    assert.ok(standIn.names(BUCKET).includes(`shared/artifacts/${key}.json`));
  });
});

describe("GcsBucket (@google-cloud/storage against the stand-in)", () => {
  beforeEach(() => standIn.reset());

  const bigFile = (bytes: number): { file: string; content: Buffer } => {
    const file = path.join(tempDir("gcs-big"), "disk.qcow2");
    const content = randomBytes(bytes);
    fs.writeFileSync(file, content);
    return { file, content };
  };

  it("uploads a large file as a resumable upload in chunks, and resumes after a chunk is refused", async () => {
    const { file, content } = bigFile(700 * 1024);
    let chunks = 0;
    standIn.beforeRequest = (method, url) => {
      const chunk = method === "PUT" && url.searchParams.get("uploadType") === "resumable";
      return chunk && ++chunks === 2 ? { status: 503, message: "backend unavailable" } : undefined;
    };
    const small = { resumableThreshold: 256 * 1024, chunkSize: 256 * 1024 };
    const object = await bucket(small).create("disks/big.qcow2", { file }, { metadata: { sha256: "x" } });
    assert.strictEqual(object?.size, String(content.length));
    assert.deepStrictEqual(object?.metadata, { sha256: "x" });
    assert.ok(standIn.buckets.get(BUCKET)?.get("disks/big.qcow2")?.content.equals(content));
    const puts = standIn.requests.filter((r) => r.startsWith("PUT"));
    assert.ok(puts.length >= 4, `three chunks and the refused one again: ${puts.join("\n")}`);
    assert.strictEqual(
      standIn.requests.filter((r) => /^POST .*uploadType=resumable.*ifGenerationMatch=0/.test(r)).length,
      1,
      "one session, started with the precondition, resumed after the refused chunk",
    );
    assert.strictEqual(
      await bucket(small).create("disks/big.qcow2", { file }),
      undefined,
      "an existing object is reported, not overwritten",
    );
  });

  it("refuses an upload whose bytes arrived changed (the MD5 declared with them), leaving no object, resumable or not", async () => {
    standIn.corruptUploads = true;
    const { file } = bigFile(300 * 1024);
    const small = { resumableThreshold: 256 * 1024, chunkSize: 256 * 1024, maxRetries: 0 };
    for (const [name, content] of [
      ["resumable", { file }],
      ["single", Buffer.from("hello")],
    ] as const) {
      await assert.rejects(
        bucket(small).create(name, content),
        new RegExp(`upload gs://antidote-test/${name}: 400 Provided MD5 hash .* doesn't match`),
      );
    }
    assert.deepStrictEqual(standIn.names(BUCKET), [], "the service created nothing (no delete needed)");
  });

  it("authenticates with a key given as JSON in GOOGLE_CREDENTIALS or as a file in GOOGLE_APPLICATION_CREDENTIALS", async () => {
    standIn.requireAuth = true;
    const dir = tempDir("gcs-key");
    const key = standIn.externalAccountKey(dir);
    const keyFile = path.join(dir, "key.json");
    fs.writeFileSync(keyFile, JSON.stringify(key));
    assert.ok(
      await bucket({ env: { GOOGLE_CREDENTIALS: JSON.stringify(key) } }).create("a", Buffer.from("a")),
    );
    assert.ok(await bucket({ env: { GOOGLE_CREDENTIALS: keyFile } }).stat("a"));
    assert.ok(await bucket({ env: { GOOGLE_APPLICATION_CREDENTIALS: keyFile } }).stat("a"));
    assert.ok(
      standIn.requests.some((r) => r.startsWith("POST /sts/v1/token")),
      "a token was exchanged",
    );
  });

  it("names the object and the status when the service refuses the credentials, and never shows a key", async () => {
    standIn.requireAuth = true;
    await assert.rejects(bucket().stat("x"), /stat gs:\/\/antidote-test\/x: 401 Invalid Credentials/);
    assert.throws(
      () => bucket({ env: { GOOGLE_CREDENTIALS: '{"private_key": "secret-key-text",' } }),
      (err: Error) =>
        /^GOOGLE_CREDENTIALS: expected a key as JSON/.test(err.message) &&
        !err.message.includes("secret-key-text"),
    );
    assert.throws(
      () => bucket({ env: { GOOGLE_APPLICATION_CREDENTIALS: "/nonexistent/key.json" } }),
      /GOOGLE_APPLICATION_CREDENTIALS: expected a key file, got '\/nonexistent\/key.json', which does not exist/,
    );
  });

  it("names the object and the endpoint's failure when the bucket API cannot be reached", async () => {
    await assert.rejects(
      new GcsBucket(BUCKET, { apiEndpoint: "http://127.0.0.1:1", env: {}, maxRetries: 0 }).stat("x"),
      /stat gs:\/\/antidote-test\/x: .*ECONNREFUSED/,
    );
  });
});
