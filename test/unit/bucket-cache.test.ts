import * as assert from "assert";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { sha256 } from "../../lib/keys";
import { BucketCache } from "../../lib/store/bucket-cache";
import { GcsStore } from "../../lib/store/gcs";
import { parseGsUrl } from "../../lib/store/gcs-bucket";
import { LocalStore } from "../../lib/store/local";
import { GcsStandIn } from "../gcs-stand-in";
import { tempDir } from "../helpers";
import { useMocks } from "../mocks";
import { exited, info, putInChild } from "../store-contract";

const BUCKET = "antidote-cache-test";
const URL = `gs://${BUCKET}/nightly`;
const standIn = new GcsStandIn();
let endpoint = "";

before(async () => {
  endpoint = await standIn.start();
});
after(() => standIn.stop());

const writeOut = (content: string) => async (dir: string) => {
  fs.writeFileSync(path.join(dir, "out.txt"), content);
  fs.mkdirSync(path.join(dir, "sub"));
  fs.writeFileSync(path.join(dir, "sub", "extra.txt"), `${content} (extra)`);
  return { primary: "out.txt" };
};

/** What a nightly build host does: builds into its store and uploads to the shared store. */
async function publishNightly(key: string, content: string): Promise<void> {
  const nightly = new GcsStore(parseGsUrl(URL), new LocalStore(tempDir("cache-nightly")), {
    apiEndpoint: endpoint,
    env: {},
    progress: () => undefined,
  });
  await nightly.put(key, info, writeOut(content));
}

/** A fresh local store reading the stand-in bucket as its cache; `warnings` collects what it says. */
function reader(
  where = endpoint,
  warnings: string[] = [],
  dir = tempDir("cache-reader"),
): { store: LocalStore; warnings: string[] } {
  const store: LocalStore = new LocalStore(dir, {
    readThrough: [
      new BucketCache(parseGsUrl(URL), {
        apiEndpoint: where,
        env: {},
        stateDir: () => store.cacheDir("cache-store"),
        probeTimeoutMs: 1_000,
        warn: (line) => warnings.push(line),
      }),
    ],
  });
  return { store, warnings };
}

const mustNotBuild = async (): Promise<never> => {
  throw new Error("built although the cache has it");
};

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe("BucketCache: a shared store's bucket read as a cache", () => {
  beforeEach(() => standIn.reset());

  it("copies a hit into the local store, checked, as cached, without writing to the bucket", async () => {
    const key = sha256("cache-hit");
    await publishNightly(key, "from the nightly");
    const objects = standIn.names(BUCKET);
    standIn.requests.length = 0;
    const { store, warnings } = reader();
    const result = await store.put(key, info, mustNotBuild);
    assert.strictEqual(result.cached, true);
    assert.strictEqual(result.artifact.dir, path.join(store.location, "artifacts", key));
    assert.strictEqual(
      fs.readFileSync(path.join(result.artifact.dir, "out.txt"), "utf8"),
      "from the nightly",
    );
    assert.match(fs.readFileSync(store.logPath(key), "utf8"), new RegExp(`copied from ${URL}/`));
    assert.deepStrictEqual(warnings, []);
    assert.deepStrictEqual(
      standIn.requests.filter((r) => !r.startsWith("GET")),
      [],
      "the cache is only read",
    );
    assert.deepStrictEqual(standIn.names(BUCKET), objects);
  });

  it("builds a key the cache lacks, silently, and never uploads it", async () => {
    await publishNightly(sha256("cache-other"), "another artifact");
    const objects = standIn.names(BUCKET);
    const { store, warnings } = reader();
    const result = await store.put(sha256("cache-miss"), info, writeOut("built here"));
    assert.strictEqual(result.cached, false);
    assert.deepStrictEqual(warnings, []);
    assert.deepStrictEqual(standIn.names(BUCKET), objects);
  });

  it("refuses a hit whose file is corrupt, says so, and builds the step, keeping nothing of the copy", async () => {
    const key = sha256("cache-corrupt");
    await publishNightly(key, "good bytes");
    const stored = standIn.buckets.get(BUCKET)?.get(`nightly/files/${sha256("good bytes")}`);
    assert.ok(stored);
    // An object rotten in place.
    stored.content = Buffer.from("bad bytes!");
    const { store, warnings } = reader();
    const result = await store.put(key, info, writeOut("good bytes"));
    assert.strictEqual(result.cached, false, "built here");
    assert.strictEqual(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], new RegExp(`cache ${URL}/: could not copy ${key} .*building it here`));
    assert.deepStrictEqual(fs.readdirSync(path.join(store.location, "tmp")), [], "no half copy left");
  });

  it("with the bucket unreachable, builds after one warning, and other processes of the store say nothing", async () => {
    const closed = `http://127.0.0.1:${await closedPort()}`;
    const dir = tempDir("cache-reader");
    const { store, warnings } = reader(closed, [], dir);
    const first = await store.put(sha256("unreachable-1"), info, writeOut("one"));
    const second = await store.put(sha256("unreachable-2"), info, writeOut("two"));
    assert.deepStrictEqual([first.cached, second.cached], [false, false]);
    assert.strictEqual(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], new RegExp(`^warning: cache ${URL}/ is not usable \\(.*ECONNREFUSED.*\\)`));
    // Step commands are processes of their own: they find the finding in the store, and wait for nothing.
    const children = [3, 4, 5].map((n) =>
      putInChild(
        { env: () => ({ ...process.env, ANTIDOTE_CACHE_STORE: URL, STORAGE_EMULATOR_HOST: closed }) },
        dir,
        sha256(`unreachable-${n}`),
        path.join(dir, "journal"),
        0,
        "ok",
      ),
    );
    const results = await Promise.all(children.map(exited));
    for (const r of results) {
      assert.strictEqual(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /warning/);
    }
    assert.strictEqual(fs.readFileSync(path.join(dir, "journal"), "utf8").split("\n").length - 1, 3);
  });

  it("processes starting together on a fresh store: exactly one of them warns", async () => {
    const closed = `http://127.0.0.1:${await closedPort()}`;
    const dir = tempDir("cache-reader");
    const children = [1, 2, 3, 4].map((n) =>
      putInChild(
        { env: () => ({ ...process.env, ANTIDOTE_CACHE_STORE: URL, STORAGE_EMULATOR_HOST: closed }) },
        dir,
        sha256(`together-${n}`),
        path.join(dir, "journal"),
        0,
        "ok",
      ),
    );
    const results = await Promise.all(children.map(exited));
    for (const r of results) assert.strictEqual(r.code, 0, r.stderr);
    const warned = results.flatMap((r) => r.stderr.split("\n").filter((l) => l.startsWith("warning:")));
    assert.strictEqual(warned.length, 1, warned.join("\n"));
  });

  it("gives up on a bucket that never answers after the probe's timeout, not the library's backoff", async () => {
    // Accepts connections and never answers, as a black-holed route would after the handshake.
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const { store, warnings } = reader(`http://127.0.0.1:${port}`);
      const result = await store.put(sha256("silent"), info, writeOut("built"));
      assert.strictEqual(result.cached, false);
      assert.strictEqual(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], /is not usable/);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it("warns once when the bucket refuses anonymous reads or holds no artifacts", async () => {
    standIn.requireAuth = true;
    const refused = reader();
    await refused.store.put(sha256("refused"), info, writeOut("x"));
    assert.strictEqual(refused.warnings.length, 1, refused.warnings.join("\n"));
    assert.match(refused.warnings[0], /is not usable \(.*401/);
    standIn.requireAuth = false;
    const empty = reader();
    await empty.store.put(sha256("empty"), info, writeOut("x"));
    assert.strictEqual(empty.warnings.length, 1, empty.warnings.join("\n"));
    assert.match(empty.warnings[0], /is not usable \(no artifacts there/);
  });
});

describe("antidote-images:cacheStore", () => {
  it("is checked when the program reads the stack config, naming the key and what was expected", async () => {
    const { projectSettings } = await import("../../lib/config");
    await useMocks({ "antidote-images:cacheStore": "https://storage.googleapis.com/b" });
    assert.throws(
      () => projectSettings(),
      /antidote-images:cacheStore: expected gs:\/\/<bucket>\/<prefix>, got 'https:\/\/storage.googleapis.com\/b'/,
    );
    await useMocks({ "antidote-images:cacheStore": "gs://Nightly_Cache/x" });
    assert.throws(
      () => projectSettings(),
      /antidote-images:cacheStore: expected a bucket name .* got 'Nightly_Cache'/,
    );
    await useMocks({ "antidote-images:cacheStore": "gs://antidote-images-cache/nightly" });
    assert.strictEqual(projectSettings().cacheStore, "gs://antidote-images-cache/nightly");
  });

  it("reaches a local step command as $ANTIDOTE_CACHE_STORE", async () => {
    const resources = await useMocks({ "antidote-images:cacheStore": "gs://antidote-images-cache/nightly" });
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after the mocks are in place
    const { Template } = require("../../lib") as typeof import("../../lib");
    new Template("cached-greeting", {
      template: "images/hello/greeting.txt",
      vars: { image: "x", platform: "y" },
      image: "x",
    });
    await new Promise((r) => setTimeout(r, 100));
    const cmd = resources.find((r) => r.name === "cached-greeting-build");
    assert.deepStrictEqual(cmd?.inputs.environment, {
      ANTIDOTE_CACHE_STORE: "gs://antidote-images-cache/nightly",
    });
  });
});
