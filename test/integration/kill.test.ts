import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { bootTestSpec, debianBaseDisk } from "../fixtures/disk";
import { PROJECT_ROOT, runCli, sharedTestStore, tempDir } from "../helpers";

/**
 * A copy of the project (library, bin and node_modules linked) with one image, `killme`, whose only step is a rootfs
 * bootstrapped with mmdebstrap, and a store of its own: every run builds it from scratch.
 */
function killProject(): string {
  const root = tempDir("kill-project");
  for (const link of ["lib", "bin", "node_modules"])
    fs.symlinkSync(path.join(PROJECT_ROOT, link), path.join(root, link));
  for (const file of ["Pulumi.yaml", "index.ts", "tsconfig.json"])
    fs.copyFileSync(path.join(PROJECT_ROOT, file), path.join(root, file));
  fs.mkdirSync(path.join(root, "images", "killme"), { recursive: true });
  fs.writeFileSync(
    path.join(root, "images", "killme", "image.ts"),
    'import { Rootfs } from "../../lib/components/rootfs";\n\n' +
      'export const rootfs = new Rootfs("killme-rootfs", { image: "killme" });\n',
  );
  fs.mkdirSync(path.join(root, "stacks"));
  fs.writeFileSync(
    path.join(root, "stacks", "Pulumi.local.yaml"),
    "config:\n  antidote-images:store: .store\n  antidote-images:registry: none\n",
  );
  return root;
}

/** Live (not zombie) processes whose command line or working directory mentions `needle`. */
function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2)[0] === "Z") continue;
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      let cwd = "";
      try {
        cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // a kernel thread or gone
      }
      if (cmdline.includes(needle) || cwd.startsWith(needle)) found.push(`${pid}: ${cmdline.slice(0, 160)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Every live descendant of `pid`, by pid, with its command line. */
function descendants(pid: number): Map<number, string> {
  const children = new Map<number, number[]>();
  const commands = new Map<number, string>();
  for (const entry of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (state === "Z") continue;
      children.set(Number(ppid), [...(children.get(Number(ppid)) ?? []), Number(entry)]);
      commands.set(Number(entry), fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " "));
    } catch {
      // gone meanwhile
    }
  }
  const found = new Map<number, string>();
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.pop() as number;
    found.set(next, commands.get(next) ?? "");
    queue.push(...(children.get(next) ?? []));
  }
  return found;
}

/** Which of `pids` still run (zombies do not). */
function stillRunning(pids: Map<number, string>): string[] {
  return [...pids]
    .filter(([pid]) => {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
      } catch {
        return false;
      }
    })
    .map(([pid, command]) => `${pid}: ${command.slice(0, 160)}`);
}

/** Resolves when `condition` holds (polled every 100 ms); rejects after `ms`. */
async function until(ms: number, what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function up(root: string): ChildProcess {
  const env = { ...process.env };
  delete env.ANTIDOTE_STORE;
  return spawn(process.execPath, [path.join(root, "bin", "antidote-images.js"), "up", "--stack", "local"], {
    cwd: root,
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
}

describe("SIGKILL of `antidote-images up` mid-rootfs (real mmdebstrap)", () => {
  it("leaves no process of the build alive 2 s later, and the next run leaves no scratch directory", async () => {
    const root = killProject();
    const store = path.join(fs.realpathSync(root), ".store");
    // Package downloads are shared, as between builds on one host (the rootfs tests do the same).
    fs.mkdirSync(path.join(store, "cache"), { recursive: true });
    fs.symlinkSync(
      sharedTestStore().cacheDir("packages-debian-amd64"),
      path.join(store, "cache", "packages-debian-amd64"),
    );
    const runner = up(root);
    let stderr = "";
    runner.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise((resolve) => runner.on("exit", resolve));
    try {
      // The runner's step command runs mmdebstrap (in the step's namespaces), downloading or unpacking.
      await until(180_000, `mmdebstrap to run (runner said: ${stderr})`, () =>
        [...descendants(runner.pid!).values()].some((c) => c.includes("mmdebstrap")),
      );
      await new Promise((r) => setTimeout(r, 3000));
      const build = descendants(runner.pid!);
      runner.kill("SIGKILL");
      await exited;
      await new Promise((r) => setTimeout(r, 2000));
      assert.deepStrictEqual(stillRunning(build), [], "processes of the build 2 s after the SIGKILL");
      assert.deepStrictEqual(processesMentioning(store), [], "processes working in the store");
    } finally {
      runner.kill("SIGKILL");
    }
    // Its reaper removed the build's scratch already; the next run builds the step and leaves none either.
    const leftovers = () => fs.readdirSync(path.join(store, "tmp"));
    assert.deepStrictEqual(leftovers(), [], "scratch left after the SIGKILL");
    const next = runCli(root, ["up", "--stack", "local"], { timeoutMs: 900_000 });
    assert.strictEqual(next.status, 0, next.stderr);
    assert.deepStrictEqual(leftovers(), [], "scratch left after the next run");
    fs.rmSync(root, { recursive: true, force: true });
  });
});

describe("SIGKILL of a step command mid-boot-test (real QEMU)", () => {
  it("takes QEMU down within 2 s and leaves no scratch directory of the boot", async () => {
    const store = sharedTestStore();
    const base = await debianBaseDisk(store);
    // Its own arguments: a boot test killed every time is never stored, so QEMU starts at every run of this test.
    const spec = bootTestSpec("killed-boot", base.disk.key, { memoryMiB: 704 });
    const step = spawn(process.execPath, [path.join(PROJECT_ROOT, "bin", "antidote-images.js"), "step"], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ANTIDOTE_STORE: store.location },
      stdio: ["pipe", "ignore", "pipe"],
    });
    let stderr = "";
    step.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    step.stdin!.end(JSON.stringify(spec));
    const exited = new Promise((resolve) => step.on("exit", resolve));
    let build = new Map<number, string>();
    try {
      await until(300_000, `QEMU to boot the disk (the step said: ${stderr})`, () =>
        [...descendants(step.pid!).values()].some((c) => c.startsWith("qemu-system")),
      );
      await new Promise((r) => setTimeout(r, 2000));
      build = descendants(step.pid!);
      step.kill("SIGKILL");
      await exited;
      await new Promise((r) => setTimeout(r, 2000));
      assert.deepStrictEqual(stillRunning(build), [], "processes of the boot test 2 s after the SIGKILL");
    } finally {
      step.kill("SIGKILL");
    }
    // The directory QEMU's overlay was in (the step's scratch) is gone, and so is any other of the step command's.
    const overlay = /file=([^,\s]+)/.exec([...build.values()].find((c) => c.startsWith("qemu-system")) ?? "");
    assert.ok(overlay, "QEMU's command line names its disk");
    assert.strictEqual(fs.existsSync(path.dirname(overlay[1])), false, `${path.dirname(overlay[1])} is left`);
    const left = fs.readdirSync(path.join(store.location, "tmp")).filter((d) => d.includes(`~${step.pid}~`));
    assert.deepStrictEqual(left, [], "scratch directories of the step command");
    assert.strictEqual(await store.has(spec.key), false);
  });
});
