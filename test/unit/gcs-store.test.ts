import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { sha256 } from "../../lib/keys";
import { GcsStore } from "../../lib/store/gcs";
import { GcsClient, parseGsUrl } from "../../lib/store/gcs-client";
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

/** Empties the bucket, forgets the requests and removes any fault. */
function reset(): void {
  standIn.buckets.clear();
  standIn.requests.length = 0;
  standIn.beforeRequest = undefined;
}

function open(dir: string): GcsStore {
  return new GcsStore(parseGsUrl(URL), new LocalStore(dir), {
    endpoint,
    token: standIn.token,
    progress: () => undefined,
  });
}

storeContract({
  name: "GcsStore (stand-in bucket)",
  open,
  env: () => ({
    ...process.env,
    ANTIDOTE_SHARED_STORE: URL,
    STORAGE_EMULATOR_HOST: endpoint,
    GOOGLE_OAUTH_ACCESS_TOKEN: standIn.token,
  }),
  sharedObjects: () => standIn.names(BUCKET),
  reset,
});

const writeOut = (content: string) => async (dir: string) => {
  fs.writeFileSync(path.join(dir, "out.txt"), content);
  fs.mkdirSync(path.join(dir, "sub"));
  fs.writeFileSync(path.join(dir, "sub", "extra.txt"), `${content} (extra)`);
  return { primary: "out.txt", outputs: { content } };
};

describe("GcsStore", () => {
  beforeEach(reset);

  it("parses gs://bucket/prefix and names what is wrong with a bad one", () => {
    assert.deepStrictEqual(parseGsUrl("gs://b-1/a/b/"), { bucket: "b-1", prefix: "a/b/" });
    assert.deepStrictEqual(parseGsUrl("gs://bucket"), { bucket: "bucket", prefix: "" });
    assert.throws(
      () => parseGsUrl("s3://x/y"),
      /sharedStore: expected gs:\/\/<bucket>\/<prefix>, got 's3:\/\/x\/y'/,
    );
    assert.throws(() => parseGsUrl("gs://Bad_Bucket/p"), /expected a bucket name/);
  });

  it("lays an artifact out as content-addressed files and a key record committed last, with no temporaries left", async () => {
    const key = sha256("layout");
    await open(tempDir("gcs-a")).put(key, info, writeOut("hello"));
    assert.deepStrictEqual(standIn.names(BUCKET), [
      `shared/artifacts/${key}.json`,
      `shared/files/${sha256("hello")}`,
      `shared/files/${sha256("hello (extra)")}`,
      `shared/logs/${key}.log`,
    ]);
    const commit = standIn.requests.findIndex((r) =>
      r.includes(`rewriteTo/b/${BUCKET}/o/shared%2Fartifacts`),
    );
    assert.match(standIn.requests[commit], /ifGenerationMatch=0/, "the commit is conditional");
    assert.ok(
      standIn.requests.slice(commit + 1).every((r) => !r.startsWith("POST")),
      "nothing is written after the commit",
    );
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

  it("two hosts racing on a key: exactly one commit wins and every host then fetches that one", async () => {
    const key = sha256("race-hosts");
    const [a, b] = await Promise.all([
      open(tempDir("gcs-a")).put(key, info, writeOut("a")),
      open(tempDir("gcs-b")).put(key, info, writeOut("b")),
    ]);
    assert.deepStrictEqual([a.cached, b.cached], [false, false], "both built (no lock spans hosts)");
    const records = standIn.names(BUCKET).filter((n) => n.includes("/artifacts/"));
    assert.strictEqual(records.length, 1);
    assert.deepStrictEqual(
      standIn.names(BUCKET).filter((n) => n.includes("/tmp/")),
      [],
    );
    const third = await open(tempDir("gcs-c")).get(key);
    assert.ok(third);
    const content = fs.readFileSync(path.join(third.dir, "out.txt"), "utf8");
    assert.ok(["a", "b"].includes(content));
    assert.strictEqual(third.meta.outputs.content, content, "files and record come from the same build");
  });

  it("an upload cut off before its commit leaves nothing in the bucket, and the next put uploads it", async () => {
    const key = sha256("cut");
    const cache = tempDir("gcs-a");
    standIn.beforeRequest = (_method, url) => {
      if (
        url.pathname.includes("rewriteTo") &&
        url.pathname.endsWith(encodeURIComponent(`shared/artifacts/${key}.json`))
      ) {
        throw new Error("connection lost");
      }
    };
    await assert.rejects(
      open(cache).put(key, info, writeOut("cut")),
      /copy gs:\/\/antidote-test\/shared\/tmp\/.*: 500/,
    );
    assert.deepStrictEqual(
      standIn.names(BUCKET).filter((n) => n.includes("/artifacts/") || n.includes("/tmp/")),
      [],
    );
    standIn.beforeRequest = undefined;
    const retried = await open(cache).put(key, info, async () => {
      throw new Error("must not build: the cache has it");
    });
    assert.strictEqual(retried.cached, true);
    assert.ok(standIn.names(BUCKET).includes(`shared/artifacts/${key}.json`));
  });

  it("sends the token as a bearer token and never puts it in an error", async () => {
    const client = new GcsClient(BUCKET, { endpoint, token: "wrong-secret-token" });
    const err = await client.stat("x").then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(err);
    assert.match(err.message, /stat gs:\/\/antidote-test\/x: 401/);
    assert.ok(!err.message.includes("wrong-secret-token"));
  });

  it("names the endpoint when the bucket API cannot be reached", async () => {
    const client = new GcsClient(BUCKET, { endpoint: "http://127.0.0.1:1", token: "t" });
    await assert.rejects(
      client.stat("x"),
      /stat gs:\/\/antidote-test\/x: could not reach http:\/\/127.0.0.1:1/,
    );
  });
});
