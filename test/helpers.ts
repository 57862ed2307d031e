import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
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
