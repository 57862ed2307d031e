import * as fs from "fs";
import * as os from "os";

/** Who holds a lock: enough to tell, on this host, whether the holder is still alive. */
interface LockOwner {
  pid: number;
  host: string;
  /** Process start time from /proc, so a recycled pid is not mistaken for the holder. */
  started: string;
  at: string;
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime) counts from after the command name, which may contain spaces.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** True when the process that wrote `owner` is gone (only decidable on the same host). */
export function isDead(owner: { pid: number; host: string; started: string }): boolean {
  if (owner.host !== os.hostname()) return false;
  return processStartTime(owner.pid) !== owner.started;
}

function self(): LockOwner {
  return {
    pid: process.pid,
    host: os.hostname(),
    started: processStartTime(process.pid) ?? "",
    at: new Date().toISOString(),
  };
}

function readOwner(file: string): LockOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as LockOwner;
  } catch {
    return undefined;
  }
}

function tryCreate(file: string): boolean {
  try {
    fs.writeFileSync(file, JSON.stringify(self()), { flag: "wx" });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/**
 * Removes `file` if its owner died. A second lock (`.break`) makes the check-and-remove atomic, so two waiters
 * cannot both break the lock and delete a fresh one taken in between.
 */
function breakIfStale(file: string): void {
  const breaker = `${file}.break`;
  if (!tryCreate(breaker)) {
    const owner = readOwner(breaker);
    const stat = fs.statSync(breaker, { throwIfNoEntry: false });
    if ((owner && isDead(owner)) || (!owner && stat && Date.now() - stat.mtimeMs > 10_000)) {
      fs.rmSync(breaker, { force: true });
    }
    return;
  }
  try {
    const owner = readOwner(file);
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    // An unreadable owner is a lock being written right now, unless it stayed so for long.
    if ((owner && isDead(owner)) || (!owner && stat && Date.now() - stat.mtimeMs > 10_000)) {
      fs.rmSync(file, { force: true });
    }
  } finally {
    fs.rmSync(breaker, { force: true });
  }
}

export interface LockOptions {
  /** Called once if the lock is held by someone else, before waiting. */
  onWait?: (holder: string) => void;
  /** Polling interval. @default 200 */
  pollMs?: number;
}

/** Who holds the lock `file`, for messages: `pid 12 on host since <time>`. */
export function lockHolder(file: string): string {
  const owner = readOwner(file);
  return owner ? `pid ${owner.pid} on ${owner.host} since ${owner.at}` : "another process";
}

/** Takes an exclusive lock file if it is free or its holder died; else returns undefined at once. */
export function tryAcquireLock(file: string): (() => void) | undefined {
  if (!tryCreate(file)) {
    breakIfStale(file);
    if (!tryCreate(file)) return undefined;
  }
  return () => fs.rmSync(file, { force: true });
}

/** Takes an exclusive lock file, waiting for a live holder and breaking a dead one's. Returns the release. */
export async function acquireLock(file: string, options: LockOptions = {}): Promise<() => void> {
  let told = false;
  for (;;) {
    const release = tryAcquireLock(file);
    if (release) return release;
    if (!told && options.onWait && fs.existsSync(file)) {
      options.onWait(lockHolder(file));
      told = true;
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}
