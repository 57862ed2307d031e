// The artifact store's contract: every ArtifactStore (the local one, the GCS-backed one) must pass these.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { sha256 } from "../lib/keys";
import { ArtifactStore } from "../lib/store/store";
import { killWithReaper, PROJECT_ROOT, tempDir } from "./helpers";

export const inputs = { kind: "test", version: 1, args: null, files: {}, parents: {} };
export const info = { kind: "test", name: "test-step", image: "test", inputs };

/** How the contract opens the store under test. */
export interface StoreHarness {
  name: string;
  /** A store whose local parts (the store itself, or its cache) live in `dir`. */
  open(dir: string): ArtifactStore;
  /** Environment for a child process that opens the same store with `openStore` (ANTIDOTE_STORE is added). */
  env(): NodeJS.ProcessEnv;
  /** Names of every object the shared part holds (none for a local store). */
  sharedObjects(): string[];
  /** Empties the shared part before each test. */
  reset(): void;
}

/** Runs a store's put in a separate process (test/fixtures/store-put.ts). */
export function putInChild(
  harness: Pick<StoreHarness, "env">,
  store: string,
  key: string,
  journal: string,
  buildMs: number,
  mode: "ok" | "fail",
): ChildProcess {
  return spawn(
    process.execPath,
    [
      "-r",
      "ts-node/register/transpile-only",
      "test/fixtures/store-put.ts",
      key,
      journal,
      String(buildMs),
      mode,
    ],
    {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...harness.env(), ANTIDOTE_STORE: store },
    },
  );
}

export function exited(
  child: ChildProcess,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c) => (stdout += c));
  child.stderr?.on("data", (c) => (stderr += c));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

export async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The store tests of the foundation, against the store `harness` opens. */
export function storeContract(harness: StoreHarness): void {
  describe(`${harness.name}: the store contract`, () => {
    beforeEach(() => harness.reset());

    it("builds a missing key once, then returns it from the store", async () => {
      const store = harness.open(tempDir("store"));
      const key = sha256("one");
      let builds = 0;
      const build = async (dir: string) => {
        builds++;
        fs.writeFileSync(path.join(dir, "out.txt"), "hello");
        return { primary: "out.txt", outputs: { n: 1 } };
      };
      assert.strictEqual(await store.has(key), false);
      const first = await store.put(key, info, build);
      const second = await store.put(key, info, build);
      assert.deepStrictEqual([first.cached, second.cached, builds], [false, true, 1]);
      const artifact = await store.get(key);
      assert.ok(artifact);
      assert.strictEqual(fs.readFileSync(path.join(artifact.dir, "out.txt"), "utf8"), "hello");
      assert.deepStrictEqual(artifact.meta.files["out.txt"], { sha256: sha256("hello"), size: 5 });
      assert.deepStrictEqual(artifact.meta.outputs, { n: 1 });
      assert.strictEqual((await store.readRef("test-step"))?.key, key);
    });

    it("builds once when two processes put the same key at the same time", async () => {
      const dir = tempDir("store-race");
      const journal = path.join(dir, "journal");
      const key = sha256("race");
      const results = await Promise.all(
        [1, 2].map(() => exited(putInChild(harness, path.join(dir, "s"), key, journal, 1500, "ok"))),
      );
      assert.deepStrictEqual(
        results.map((r) => r.code),
        [0, 0],
        results.map((r) => r.stderr).join("\n"),
      );
      const cached = results.map((r) => (JSON.parse(r.stdout) as { cached: boolean }).cached).sort();
      assert.deepStrictEqual(cached, [false, true]);
      assert.strictEqual(
        fs.readFileSync(journal, "utf8").trim().split("\n").length,
        1,
        "exactly one build ran",
      );
    });

    it("leaves nothing has() accepts when a build is killed with SIGKILL, and cleans up on the next put", async () => {
      const dir = tempDir("store-kill");
      const storeDir = path.join(dir, "s");
      const journal = path.join(dir, "journal");
      const key = sha256("killed");
      const child = putInChild(harness, storeDir, key, journal, 60_000, "ok");
      const done = exited(child);
      await until(() => fs.existsSync(journal), "the build to start");
      // Its reaper too: what is left must be found by the next put (the reaper's own cleanup: test/unit/exec.test.ts).
      killWithReaper(child.pid!);
      await done;
      const store = harness.open(storeDir);
      assert.strictEqual(await store.has(key), false);
      assert.strictEqual(
        await harness.open(tempDir("store-other")).has(key),
        false,
        "another host finds nothing",
      );
      assert.deepStrictEqual(harness.sharedObjects(), [], "nothing in the shared store");
      assert.strictEqual(
        fs.readdirSync(path.join(storeDir, "tmp")).length,
        1,
        "the dead build's directory is there",
      );
      assert.ok(fs.existsSync(path.join(storeDir, "locks", `${key}.lock`)), "the dead build's lock is there");

      const rebuilt = await store.put(key, info, async (out) => {
        fs.writeFileSync(path.join(out, "out.txt"), "second try");
        return { primary: "out.txt" };
      });
      assert.strictEqual(rebuilt.cached, false);
      assert.deepStrictEqual(fs.readdirSync(path.join(storeDir, "tmp")), [], "leftovers removed");
      assert.deepStrictEqual(fs.readdirSync(path.join(storeDir, "locks")), [], "lock released");
    });

    it("leaves nothing when a build fails, and keeps its log", async () => {
      const dir = tempDir("store-fail");
      const result = await exited(
        putInChild(harness, path.join(dir, "s"), sha256("fails"), path.join(dir, "j"), 10, "fail"),
      );
      assert.strictEqual(result.code, 1);
      assert.match(result.stderr, /the build failed on purpose/);
      const store = harness.open(path.join(dir, "s"));
      assert.strictEqual(await store.has(sha256("fails")), false);
      assert.deepStrictEqual(fs.readdirSync(path.join(dir, "s", "tmp")), []);
      assert.deepStrictEqual(fs.readdirSync(path.join(dir, "s", "artifacts")), []);
      assert.ok(fs.existsSync(store.logPath(sha256("fails"))));
      assert.deepStrictEqual(harness.sharedObjects(), [], "nothing in the shared store");
    });

    it("garbage-collects what the kept keys do not reach through their parents", async () => {
      const store = harness.open(tempDir("store-gc"));
      const put = async (name: string, parents: Record<string, string>) => {
        const key = sha256(name);
        await store.put(key, { ...info, inputs: { ...inputs, parents } }, async (out) => {
          fs.writeFileSync(path.join(out, "f"), name);
          return { primary: "f" };
        });
        return key;
      };
      const base = await put("base", {});
      const derived = await put("derived", { base });
      const orphan = await put("orphan", {});
      const { removed, kept } = await store.gc([derived]);
      assert.deepStrictEqual(removed, [orphan]);
      assert.deepStrictEqual(kept.sort(), [base, derived].sort());
      assert.strictEqual(await store.has(orphan), false);
      assert.strictEqual(await store.has(base), true);
    });

    it("rejects a key that is not 64 hex digits (no path tricks)", async () => {
      const store = harness.open(tempDir("store-key"));
      await assert.rejects(store.get("../../etc"), /not a step key/);
    });
  });
}
