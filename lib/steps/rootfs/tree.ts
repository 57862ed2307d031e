import * as fs from "fs";
import * as path from "path";
import { Isolated } from "../../distro/distro";
import { ExecError } from "../../exec";
import { StepLog } from "../log";

/** unshare(1) options that give a command its own mount, PID, UTS and IPC namespaces, ended with it. */
const NAMESPACES = [
  "--mount",
  "--propagation",
  "private",
  "--pid",
  "--uts",
  "--ipc",
  "--fork",
  "--kill-child",
];

/** Runs host commands in private namespaces: nothing they mount or start outlives them (see chroot.sh). */
export function isolatedRunner(log: StepLog): Isolated {
  return async (command, args, env) => {
    await log.exec("unshare", [...NAMESPACES, command, ...args], { env });
  };
}

/** A command that failed inside the image tree, named as the author knows it (e.g. `install.sh`). */
export class TreeCommandError extends Error {}

/**
 * The image tree being built and the ways into it. Every command runs through `chroot.sh` in fresh namespaces, with
 * the stage directory (scripts, hooks, files) read-only at /run/antidote and a clean environment.
 */
export class ImageTree {
  private readonly isolated: Isolated;

  constructor(
    readonly root: string,
    readonly stage: string,
    private readonly chrootScript: string,
    private readonly env: Record<string, string>,
    private readonly log: StepLog,
  ) {
    this.isolated = isolatedRunner(log);
  }

  /** Runs `command` in the tree; a failure names `what` and the exit status. */
  run(what: string, command: string[], env: Record<string, string> = {}): Promise<void> {
    return this.enter(what, [], command, env);
  }

  /**
   * Runs a host `command` with the tree mounted as for {@link run} and the same clean environment, for a tool that
   * enters the tree by itself (ansible-playbook's chroot connection); what it starts in the tree ends with it.
   */
  runOnHost(what: string, command: string[], env: Record<string, string> = {}): Promise<void> {
    return this.enter(what, ["--on-host"], command, env);
  }

  private async enter(what: string, mode: string[], command: string[], env: Record<string, string>) {
    const assignments = Object.entries({ ...this.env, ...env }).map(([k, v]) => `${k}=${v}`);
    try {
      await timed(this.log, what, () =>
        this.isolated("/bin/sh", [
          this.chrootScript,
          ...mode,
          this.root,
          this.stage,
          "/usr/bin/env",
          "-i",
          ...assignments,
          ...command,
        ]),
      );
    } catch (err) {
      if (err instanceof ExecError) throw new TreeCommandError(`${what} ${err.status}`);
      throw err;
    }
  }
}

/** Runs `work` and notes in the log how long it took (what the benchmark reads). */
export async function timed<T>(log: StepLog, what: string, work: () => Promise<T>): Promise<T> {
  const started = process.hrtime.bigint();
  const result = await work();
  log.write(`# ${what}: ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`);
  return result;
}

/**
 * Hard-links the package files of `from` that `to` lacks into `to` (copies across file systems), so builds share
 * downloads without sharing a directory: whatever a build deletes in its tree, the cache keeps. Returns the count.
 */
export function shareFiles(from: string, to: string, suffix: string): number {
  if (!fs.existsSync(from)) return 0;
  fs.mkdirSync(to, { recursive: true });
  let count = 0;
  for (const name of fs.readdirSync(from)) {
    if (!name.endsWith(suffix)) continue;
    const source = path.join(from, name);
    const target = path.join(to, name);
    try {
      fs.linkSync(source, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") continue;
      if (code !== "EXDEV") throw err;
      fs.copyFileSync(source, target, fs.constants.COPYFILE_EXCL);
    }
    count++;
  }
  return count;
}

/** Single-quotes a word for sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
