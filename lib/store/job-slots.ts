import * as fs from "fs";
import * as path from "path";
import { tryAcquireLock } from "./lock";

/** The environment variable that sets how many steps may build at once on this machine. */
export const JOBS_ENV = "ANTIDOTE_JOBS";

/** Steps built at once on one machine, unless `$ANTIDOTE_JOBS` or `--jobs` says otherwise: the kernel build alone
 * keeps two cores busy. */
export const DEFAULT_JOBS = 2;

/** `$ANTIDOTE_JOBS` as a limit, else {@link DEFAULT_JOBS}; anything else is an error naming the variable. */
export function jobLimit(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[JOBS_ENV];
  if (raw === undefined || raw === "") return DEFAULT_JOBS;
  const jobs = Number(raw);
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new Error(`$${JOBS_ENV}: expected a positive whole number of steps to build at once, got '${raw}'`);
  }
  return jobs;
}

export interface JobSlotOptions {
  /** Called once when every slot is taken, before waiting. */
  onWait?: (limit: number) => void;
  signal?: AbortSignal;
  /** @default 500 */
  pollMs?: number;
}

/**
 * Takes one of `limit` build slots of the machine (lock files `<dir>/<n>.lock`, released when the holder dies), so
 * steps started together — `pulumi up` starts every ready command at once — never build more at once than the
 * machine takes. Returns the release.
 */
export async function acquireJobSlot(
  dir: string,
  limit: number,
  options: JobSlotOptions = {},
): Promise<() => void> {
  fs.mkdirSync(dir, { recursive: true });
  let told = false;
  for (;;) {
    for (let slot = 0; slot < limit; slot++) {
      const release = tryAcquireLock(path.join(dir, `${slot}.lock`));
      if (release) return release;
    }
    if (options.signal?.aborted) throw new Error("stopped while waiting for a build slot");
    if (!told) options.onWait?.(limit);
    told = true;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
  }
}
