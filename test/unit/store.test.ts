import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { sha256 } from "../../lib/keys";
import { LocalStore } from "../../lib/store/local";
import { tempDir } from "../helpers";
import { info, storeContract } from "../store-contract";

storeContract({
  name: "LocalStore",
  open: (dir) => new LocalStore(dir),
  env: () => {
    const env = { ...process.env };
    delete env.ANTIDOTE_SHARED_STORE;
    return env;
  },
  sharedObjects: () => [],
  reset: () => undefined,
});

describe("LocalStore", () => {
  it("refuses an artifact without its primary file or with another key in meta.json", async () => {
    const store = new LocalStore(tempDir("store-bad"));
    const key = sha256("bad");
    await store.put(key, info, async (out) => {
      fs.writeFileSync(path.join(out, "out.txt"), "x");
      return { primary: "out.txt" };
    });
    const artifact = await store.get(key);
    assert.ok(artifact);
    const metaFile = path.join(artifact.dir, "meta.json");
    const meta = fs.readFileSync(metaFile, "utf8");
    fs.writeFileSync(metaFile, meta.replace(key, sha256("other")));
    assert.strictEqual(await store.has(key), false, "meta.json of another key");
    fs.writeFileSync(metaFile, meta);
    assert.strictEqual(await store.has(key), true);
    fs.rmSync(path.join(artifact.dir, "out.txt"));
    assert.strictEqual(await store.has(key), false, "primary file missing");
    await assert.rejects(
      store.put(sha256("no-primary"), info, async () => ({ primary: "missing.txt" })),
      /did not produce its primary output 'missing.txt'/,
    );
  });
});

describe("LocalStore reading through another store", () => {
  /** Every file under `dir` with its size and modification time: what "nothing written" is checked against. */
  function snapshot(dir: string): string[] {
    return (fs.readdirSync(dir, { recursive: true }) as string[]).sort().map((name) => {
      const stat = fs.statSync(path.join(dir, name));
      return `${name} ${stat.isFile() ? stat.size : "dir"} ${stat.mtimeMs}`;
    });
  }

  async function upstreamWith(key: string): Promise<LocalStore> {
    const upstream = new LocalStore(tempDir("store-upstream"));
    await upstream.put(key, info, async (out) => {
      fs.mkdirSync(path.join(out, "boot"));
      fs.writeFileSync(path.join(out, "boot", "vmlinuz"), "kernel bytes");
      fs.writeFileSync(path.join(out, "config"), "CONFIG_X=y\n");
      return { primary: "boot/vmlinuz" };
    });
    return upstream;
  }

  it("copies in an artifact it lacks, as cached, without building or writing to the other store", async () => {
    const key = sha256("read-through");
    const upstream = await upstreamWith(key);
    const before = snapshot(upstream.location);
    const store = new LocalStore(tempDir("store-reader"), { readThrough: [upstream.location] });
    assert.strictEqual(await store.has(key), true, "has() sees the other store's artifact");
    assert.strictEqual(
      fs.readdirSync(path.join(store.location, "artifacts")).length,
      0,
      "has() copies nothing",
    );
    const result = await store.put(key, info, async () => {
      throw new Error("built although the other store has it");
    });
    assert.strictEqual(result.cached, true);
    assert.strictEqual(result.artifact.dir, path.join(store.location, "artifacts", key));
    assert.strictEqual(
      fs.readFileSync(path.join(result.artifact.dir, "boot", "vmlinuz"), "utf8"),
      "kernel bytes",
    );
    assert.match(fs.readFileSync(store.logPath(key), "utf8"), /copied from /);
    assert.ok(await store.readRef(info.name), "recorded as the step's latest build, for plan");
    assert.deepStrictEqual(snapshot(upstream.location), before, "the other store is only read");
  });

  it("refuses a copy whose file does not match its sha256, storing nothing", async () => {
    const key = sha256("read-through-corrupt");
    const upstream = await upstreamWith(key);
    const artifact = await upstream.get(key);
    fs.writeFileSync(path.join(artifact!.dir, "config"), "CONFIG_X=n\n");
    const store = new LocalStore(tempDir("store-reader"), { readThrough: [upstream.location] });
    await assert.rejects(store.get(key), /file 'config' should have sha256 [0-9a-f]{64}, got [0-9a-f]{64}/);
    assert.strictEqual(fs.readdirSync(path.join(store.location, "artifacts")).length, 0);
  });
});
