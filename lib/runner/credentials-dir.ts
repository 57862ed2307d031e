import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ownScratch } from "../exec";
import { processStartTime } from "../store/lock";

/**
 * A private directory (mode 0700) under the temp dir for credentials a run hands to a tool: docker's config with a
 * registry login, ssh's key and known-hosts files. `remove` deletes it; the reaper does when this process is killed
 * (lib/exec.ts). When the reaper died too (SIGKILL of both, the OOM killer, a power loss), the next run that makes one
 * of the same kind deletes it: its name carries the owner's pid and start time, so a dead owner's is told apart
 * from a running one's.
 */
export function credentialsDir(kind: string): { dir: string; remove: () => void } {
  removeDeadOwners(kind);
  const owner = `${kind}~${process.pid}~${processStartTime(process.pid) ?? "0"}~`;
  // mkdtemp makes it 0700: only this user reads what goes in.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), owner));
  return { dir, remove: ownScratch(dir) };
}

/** Deletes the `kind` directories whose owning process is gone. */
function removeDeadOwners(kind: string): void {
  for (const entry of fs.readdirSync(os.tmpdir())) {
    const [prefix, pid, started] = entry.split("~");
    if (prefix !== kind || pid === undefined || started === undefined) continue;
    if (processStartTime(Number(pid)) === started) continue;
    try {
      fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
    } catch {
      // Another user's: theirs to reclaim.
    }
  }
}
