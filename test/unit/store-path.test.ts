import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT, tempDir } from "../helpers";

/**
 * `openStore()` as a step command calls it, in a child killed after 20 s (SIGKILL: a process spinning in a
 * synchronous mkdir never runs a signal handler): its error message, or why it did not end.
 */
function openStoreIn(env: Record<string, string>): string {
  const run = spawnSync(
    process.execPath,
    [
      "-r",
      "ts-node/register/transpile-only",
      "-e",
      'try { require("./lib/store/open").openStore(); console.log("opened") } catch (e) { console.log(e.message) }',
    ],
    {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      encoding: "utf8",
      timeout: 20_000,
      killSignal: "SIGKILL",
    },
  );
  return run.signal ? `did not end within 20 s (${run.signal})` : run.stdout.trim();
}

describe("opening a local store at a path that cannot be one", () => {
  it("under /proc: fails at once (Node's recursive mkdir spins there), naming $ANTIDOTE_STORE and the path", () => {
    assert.strictEqual(
      openStoreIn({ ANTIDOTE_STORE: "/proc/antidote-images-test/store" }),
      "$ANTIDOTE_STORE (the stack's antidote-images:store): expected a directory the artifact store can be created " +
        "and written in, got '/proc/antidote-images-test/store': ENOENT: no such file or directory, mkdir " +
        "'/proc/antidote-images-test'",
    );
  });

  it("below a regular file: says what was expected, not only the errno", () => {
    const file = path.join(tempDir("store-path"), "file");
    fs.writeFileSync(file, "");
    assert.match(
      openStoreIn({ ANTIDOTE_STORE: path.join(file, "store") }),
      new RegExp(
        `^\\$ANTIDOTE_STORE \\(the stack's antidote-images:store\\): expected a directory the artifact store can be ` +
          `created and written in, got '${file}/store': ENOTDIR`,
      ),
    );
  });

  it("creates a missing store with its parents", () => {
    const store = path.join(tempDir("store-path"), "a", "b", "store");
    assert.strictEqual(openStoreIn({ ANTIDOTE_STORE: store }), "opened");
    assert.ok(fs.statSync(path.join(store, "artifacts")).isDirectory());
  });
});
