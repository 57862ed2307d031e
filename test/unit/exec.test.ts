import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { stepKey } from "../../lib/keys";
import { LocalStore } from "../../lib/store/local";
import { runStep } from "../../lib/steps/run";
import { StepDefinition } from "../../lib/steps/step";
import { killWithReaper, PROJECT_ROOT, tempDir } from "../helpers";

/** Starts test/fixtures/exec-parent.ts and resolves with its first line, once its children are running. */
function startParent(mode: "group" | "step", dir: string): Promise<{ parent: ChildProcess; line: string }> {
  const parent = spawn(
    process.execPath,
    ["-r", "ts-node/register/transpile-only", "test/fixtures/exec-parent.ts", mode, dir],
    { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  parent.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    parent.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("\n")) resolve({ parent, line: out.split("\n")[0] });
    });
    parent.on("exit", (code) =>
      reject(new Error(`the parent exited with ${code} before it was ready: ${err}`)),
    );
  });
}

/** Whether `pid` is a live process (a zombie is not). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Polls `condition` until it holds or `ms` have passed since `since`; returns whether it held. */
async function within(ms: number, since: number, condition: () => boolean): Promise<boolean> {
  while (!condition()) {
    if (Date.now() - since > ms) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe("Process layer (lib/exec.ts)", () => {
  it("takes a command and its grandchild down within 1 s of its parent's SIGKILL, and removes its scratch", async () => {
    const dir = tempDir("exec-group");
    const { parent } = await startParent("group", dir);
    const pids = ["child", "grandchild"].map((f) => Number(fs.readFileSync(path.join(dir, f), "utf8")));
    try {
      assert.ok(pids.every(alive), "the command and its grandchild run");
      const killed = Date.now();
      parent.kill("SIGKILL");
      assert.ok(
        await within(1000, killed, () => !pids.some(alive)),
        `still alive 1 s after the parent's SIGKILL: ${pids.filter(alive).join(", ")}`,
      );
      assert.ok(
        await within(1000, killed, () => !fs.existsSync(path.join(dir, "scratch"))),
        "the scratch directory is removed",
      );
    } finally {
      pids.filter(alive).forEach((pid) => process.kill(pid, "SIGKILL"));
    }
  });

  it("removes a killed step's work and output directories within 1 s", async () => {
    const storeDir = tempDir("exec-step");
    const { parent, line } = await startParent("step", storeDir);
    const { work, out } = JSON.parse(line) as { work: string; out: string };
    assert.ok(fs.existsSync(work) && fs.existsSync(out));
    const killed = Date.now();
    parent.kill("SIGKILL");
    assert.ok(
      await within(1000, killed, () => !fs.existsSync(work) && !fs.existsSync(out)),
      `left behind: ${[work, out].filter((d) => fs.existsSync(d)).join(", ")}`,
    );
  });

  it("reclaims a dead build's scratch at the next run, even when its reaper died with it", async () => {
    const storeDir = tempDir("exec-dead-run");
    const { parent, line } = await startParent("step", storeDir);
    const { work, out } = JSON.parse(line) as { work: string; out: string };
    // As after a power loss or the OOM killer: the reaper goes first, so nothing cleans up behind the build.
    const exited = new Promise((resolve) => parent.on("exit", resolve));
    killWithReaper(parent.pid!);
    await exited;
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(fs.existsSync(work), "the dead build's scratch is left behind");

    // The next run: one step, against the same store.
    const quick: StepDefinition = {
      kind: "quick",
      version: 1,
      parseArgs: (args) => args,
      async run(ctx) {
        fs.writeFileSync(path.join(ctx.out, "out.txt"), "ok");
        return { primary: "out.txt" };
      },
    };
    const parts = { kind: "quick", version: 1, args: null, files: {}, parents: {} };
    await runStep(
      { ...parts, name: "quick", image: "test", key: stepKey(parts) },
      { store: new LocalStore(storeDir), definitions: { quick }, progress: () => undefined },
    );
    assert.ok(!fs.existsSync(work), `the dead build's work directory ${work} is reclaimed`);
    assert.ok(!fs.existsSync(out), `the dead build's output directory ${out} is reclaimed`);
    assert.deepStrictEqual(fs.readdirSync(path.join(storeDir, "tmp")), []);
  });
});
