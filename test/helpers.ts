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

/** The command line and environment `antidote-images <args>` of the project at `root` runs with (see runCli). */
function cliInvocation(root: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const env = { ...process.env, ...extraEnv };
  if (!("ANTIDOTE_STORE" in extraEnv)) delete env.ANTIDOTE_STORE;
  return { argv: [path.join(root, "bin", "antidote-images.js"), ...args], env };
}

/**
 * Runs `antidote-images <args>` of the project at `root`, in it, as a user would: the stack's config names the store
 * (the `$ANTIDOTE_STORE` a test tier may set is left out). `env` adds to the environment.
 */
export function runCli(
  root: string,
  args: string[],
  options: { timeoutMs: number; killSignal?: NodeJS.Signals; env?: NodeJS.ProcessEnv },
): SpawnSyncReturns<string> {
  const { argv, env } = cliInvocation(root, args, options.env);
  return spawnSync(process.execPath, argv, {
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
 * {@link runCli} without blocking this process: for a test that serves the command something itself (the bucket
 * stand-in, build hosts). Killed with SIGTERM after `timeoutMs`; `report` is the `--json` report, when there is one.
 */
export function runCliAsync(
  root: string,
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number | null; stdout: string; stderr: string; report?: RunReport; ms: number }> {
  const { argv, env } = cliInvocation(root, args, options.env);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = options.timeoutMs ? setTimeout(() => child.kill("SIGTERM"), options.timeoutMs) : undefined;
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      const report = args.includes("--json") && stdout.trim() ? (JSON.parse(stdout) as RunReport) : undefined;
      resolve({ status, stdout, stderr, report, ms: Date.now() - started });
    });
  });
}

/** Processes (other than this one) whose command line contains `needle`, as `<pid>: <command line>`. */
export function processesMatching(needle: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmdline.includes(needle) && Number(pid) !== process.pid) found.push(`${pid}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Mounts anywhere under a rootfs build's scratch directory, as the host sees them. */
export function rootfsBuildMounts(): string[] {
  return fs
    .readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .filter((line) => line.includes("antidote-rootfs-"));
}
