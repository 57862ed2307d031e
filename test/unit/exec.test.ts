import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT, tempDir } from "../helpers";

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
});
