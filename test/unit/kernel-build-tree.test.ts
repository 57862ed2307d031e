import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { StepLog } from "../../lib/steps/log";
import { claimBuildTree } from "../../lib/steps/kernel/build-tree";

describe("kernel build tree", function () {
  let cache: string;
  let work: string;
  let log: StepLog;
  beforeEach(function () {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "antidote-build-tree-"));
    cache = path.join(root, "cache");
    work = path.join(root, "work");
    fs.mkdirSync(work);
    log = new StepLog(path.join(root, "log"), new AbortController().signal, () => {});
  });
  afterEach(function () {
    fs.rmSync(path.dirname(cache), { recursive: true, force: true });
  });
  const logText = () => fs.readFileSync(log.path, "utf8");
  const pkg = "linux-source-6.1";

  it("keeps the tree of a finished build for the next one, and clears the packages beside it", function () {
    const first = claimBuildTree(cache, pkg, "6.1.1-1", work, log);
    assert.strictEqual(first.dir, path.join(cache, `${pkg}_6.1.1-1`, "build"));
    assert.strictEqual(first.incremental, false);
    fs.mkdirSync(first.dir, { recursive: true });
    fs.writeFileSync(path.join(first.dir, "vmlinux"), "");
    fs.writeFileSync(path.join(first.packageDir, "linux-image-6.1.1_6.1.1-1_amd64.deb"), "");
    first.release(true);

    const second = claimBuildTree(cache, pkg, "6.1.1-1", work, log);
    assert.strictEqual(second.dir, first.dir);
    assert.strictEqual(second.incremental, true);
    assert.deepStrictEqual(fs.readdirSync(second.packageDir).sort(), ["build", "unfinished"]);
    second.release(true);
  });

  it("gives a second build at the same time a fresh tree in its work directory", function () {
    const first = claimBuildTree(cache, pkg, "6.1.1-1", work, log);
    const second = claimBuildTree(cache, pkg, "6.1.1-1", work, log);
    assert.strictEqual(second.dir, path.join(work, "build"));
    assert.strictEqual(second.packageDir, work);
    assert.strictEqual(second.incremental, false);
    assert.match(logText(), /is in use \(pid \d+ on .* since .*\): building in a fresh tree/);
    second.release(true);
    first.release(true);
    assert.strictEqual(claimBuildTree(cache, pkg, "6.1.1-1", work, log).dir, first.dir);
  });

  it("wipes a tree whose build was cut off", function () {
    const cut = claimBuildTree(cache, pkg, "6.1.1-1", work, log);
    fs.mkdirSync(cut.dir, { recursive: true });
    fs.writeFileSync(path.join(cut.dir, "vmlinux"), "");
    cut.release(false);

    const next = claimBuildTree(cache, pkg, "6.1.1-1", work, log);
    assert.strictEqual(next.incremental, false);
    assert.ok(!fs.existsSync(next.dir), "the tree of the cut-off build is gone");
    assert.match(logText(), /its last build was cut off; starting it clean/);
    next.release(true);
  });

  it("wipes a tree whose builder died without releasing it", async function () {
    // A process that claims the tree and is killed: its lock is stale, its marker stays.
    const script = `require("ts-node/register/transpile-only");
      const { claimBuildTree } = require(${JSON.stringify(path.resolve(__dirname, "../../lib/steps/kernel/build-tree"))});
      const { StepLog } = require(${JSON.stringify(path.resolve(__dirname, "../../lib/steps/log"))});
      const log = new StepLog(${JSON.stringify(log.path)}, new AbortController().signal, () => {});
      claimBuildTree(${JSON.stringify(cache)}, ${JSON.stringify(pkg)}, "6.1.1-1", ${JSON.stringify(work)}, log);
      process.kill(process.pid, "SIGKILL");`;
    await new Promise((resolve) =>
      spawn(process.execPath, ["-e", script], { stdio: "inherit" }).on("exit", resolve),
    );
    assert.ok(fs.existsSync(path.join(cache, `${pkg}_6.1.1-1`, "unfinished")));

    const next = claimBuildTree(cache, pkg, "6.1.1-1", work, log);
    assert.strictEqual(
      next.dir,
      path.join(cache, `${pkg}_6.1.1-1`, "build"),
      "the dead builder's lock is broken",
    );
    assert.match(logText(), /its last build was cut off/);
    next.release(true);
  });

  it("removes the package's other versions' trees, but not one in use nor another package's", function () {
    const old = claimBuildTree(cache, pkg, "6.1.1-1", work, log);
    old.release(true);
    const busy = claimBuildTree(cache, pkg, "6.1.2-1", work, log);
    claimBuildTree(cache, "linux-source-6.12", "6.12.1-1", work, log).release(true);

    const current = claimBuildTree(cache, pkg, "6.1.3-1", work, log);
    const trees = fs.readdirSync(cache).filter((e) => !e.endsWith(".lock"));
    assert.deepStrictEqual(trees.sort(), ["linux-source-6.12_6.12.1-1", `${pkg}_6.1.2-1`, `${pkg}_6.1.3-1`]);
    current.release(true);
    busy.release(true);
  });
});
