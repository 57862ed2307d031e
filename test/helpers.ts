import { spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { RunReport } from "../lib/runner/local-runner";
import { defaultStoreDir, LocalStore } from "../lib/store/local";

/** The project directory (where Pulumi.yaml is). */
export const PROJECT_ROOT = path.resolve(__dirname, "..");

/** A fresh, empty directory under the system temp dir; removed by the caller or left for the OS. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `antidote-${prefix}-`));
}

/**
 * The store integration tests share, so the kernel and root filesystems are built once per machine and reused by
 * the disk, boot and container tests: `$ANTIDOTE_TEST_STORE`, else `<tmp>/antidote-test-store`. It reads through the
 * user's own store (`~/.cache/antidote-images`, where the README's `up` builds): an artifact of the same key there,
 * above all the kernel, is copied in and checked by sha256 instead of built again; that store is never written.
 */
export function sharedTestStore(): LocalStore {
  const userStore = defaultStoreDir({ ...process.env, ANTIDOTE_STORE: undefined });
  return new LocalStore(process.env.ANTIDOTE_TEST_STORE ?? path.join(os.tmpdir(), "antidote-test-store"), {
    readThrough: fs.existsSync(path.join(userStore, "artifacts")) ? [userStore] : [],
  });
}

/**
 * SIGKILLs `pid` together with its reaper (lib/exec.ts), as a power loss or the OOM killer would: nothing cleans up
 * behind it, so what the next run reclaims can be checked.
 */
export function killWithReaper(pid: number): void {
  for (const entry of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid && fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").startsWith("perl\0"))
        process.kill(Number(entry), "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  process.kill(pid, "SIGKILL");
}

/**
 * Runs `antidote-images <args>` of the project at `root`, in it, as a user would: the stack's config names the store
 * (the `$ANTIDOTE_STORE` a test tier may set is left out).
 */
export function runCli(
  root: string,
  args: string[],
  options: { timeoutMs: number; killSignal?: NodeJS.Signals },
): SpawnSyncReturns<string> {
  const env = { ...process.env };
  delete env.ANTIDOTE_STORE;
  return spawnSync(process.execPath, [path.join(root, "bin", "antidote-images.js"), ...args], {
    cwd: root,
    env,
    encoding: "utf8",
    timeout: options.timeoutMs,
    killSignal: options.killSignal,
  });
}

/**
 * A copy of the project in a temp folder for a test's own images and stacks: library, bin and node_modules linked,
 * the program and the hello image copied (`program`, when given, replaces its image.ts), `stacks/` empty.
 */
export function helloProject(prefix: string, program?: string): string {
  const root = tempDir(prefix);
  for (const link of ["lib", "bin", "node_modules"])
    fs.symlinkSync(path.join(PROJECT_ROOT, link), path.join(root, link));
  for (const file of ["Pulumi.yaml", "package.json", "index.ts", "tsconfig.json"]) {
    fs.copyFileSync(path.join(PROJECT_ROOT, file), path.join(root, file));
  }
  fs.cpSync(path.join(PROJECT_ROOT, "images", "hello"), path.join(root, "images", "hello"), {
    recursive: true,
  });
  if (program) fs.writeFileSync(path.join(root, "images", "hello", "image.ts"), program);
  fs.mkdirSync(path.join(root, "stacks"));
  return root;
}

/**
 * Runs `antidote-images <args>` of the project at `root` with `env`, without blocking this process (a stand-in
 * serving it from here keeps answering); `report` is the `--json` report, when there is one.
 */
export function runCliAsync(
  root: string,
  env: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ status: number | null; stderr: string; report?: RunReport; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [path.join(root, "bin", "antidote-images.js"), ...args], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) =>
    child.on("close", (status) =>
      resolve({
        status,
        stderr,
        report: stdout.trim() ? (JSON.parse(stdout) as RunReport) : undefined,
        ms: Date.now() - started,
      }),
    ),
  );
}
