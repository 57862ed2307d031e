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
