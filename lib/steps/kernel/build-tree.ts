import * as fs from "fs";
import * as path from "path";
import { lockHolder, tryAcquireLock } from "../../store/lock";
import { StepLog } from "../log";

/** Where in the store's caches the kernel step keeps one build tree per kernel source. */
export const BUILD_TREE_CACHE = "kernel-build";

/** The `O=` directory of one kernel build, and how to hand it back. */
export interface BuildTree {
  /** The build directory (`make O=`). */
  dir: string;
  /** Where `bindeb-pkg` writes its packages: the parent of `dir`. */
  packageDir: string;
  /** True when the tree holds an earlier build that `make` brings up to date instead of starting over. */
  incremental: boolean;
  /**
   * Hands the tree back once the outputs are copied out. `consistent` is false when the build was cut off (its
   * commands killed): then the tree is wiped before its next use.
   */
  release(consistent: boolean): void;
}

/**
 * Claims the kept build tree of a kernel source (`<cache>/<source>/build`). Kbuild records which `CONFIG_` options
 * each object reads (fixdep), so after a fragment change `make` recompiles only the objects that read a changed
 * option; a fresh tree would preprocess every file again to ask ccache, which is most of a rebuild's time.
 *
 * One build at a time owns the tree (a lock file); a build that finds it taken builds in a fresh tree under `work`
 * (ccache still serves it). While a build runs, an `unfinished` marker sits beside the tree: a build that was
 * killed may leave an object file half written and newer than its sources, which `make` would trust, so a tree
 * found with the marker is wiped and built from scratch.
 *
 * One tree is kept per source package: claiming the tree of a new version (a Debian update of the source) removes
 * the trees of the package's other versions that no build is using, so the cache does not grow by a tree (about
 * 400 MB for the standard kernel) with every update.
 */
export function claimBuildTree(
  cacheDir: string,
  sourcePackage: string,
  sourceVersion: string,
  work: string,
  log: StepLog,
): BuildTree {
  const root = path.join(cacheDir, `${sourcePackage}_${sourceVersion}`);
  fs.mkdirSync(root, { recursive: true });
  const lock = `${root}.lock`;
  const unlock = tryAcquireLock(lock);
  if (!unlock) {
    log.write(`kept build tree ${root} is in use (${lockHolder(lock)}): building in a fresh tree`);
    return { dir: path.join(work, "build"), packageDir: work, incremental: false, release: () => {} };
  }
  removeOtherVersions(cacheDir, sourcePackage, root, log);
  const dir = path.join(root, "build");
  const unfinished = path.join(root, "unfinished");
  if (fs.existsSync(unfinished)) {
    log.write(`kept build tree ${dir}: its last build was cut off; starting it clean`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // bindeb-pkg writes beside the tree: the last build's packages must not pass for this one's.
  for (const entry of fs.readdirSync(root)) {
    if (entry !== "build") fs.rmSync(path.join(root, entry), { recursive: true, force: true });
  }
  const incremental = fs.existsSync(path.join(dir, "vmlinux"));
  fs.writeFileSync(unfinished, `${process.pid}\n`);
  log.write(
    incremental
      ? `kept build tree ${dir}: make rebuilds what the configuration change touches`
      : `kept build tree ${dir}: empty, full build`,
  );
  return {
    dir,
    packageDir: root,
    incremental,
    release(consistent) {
      if (consistent) fs.rmSync(unfinished, { force: true });
      unlock();
    },
  };
}

/** Removes the kept trees of `sourcePackage`'s other versions, except those a build holds. */
function removeOtherVersions(cacheDir: string, sourcePackage: string, keep: string, log: StepLog): void {
  for (const entry of fs.readdirSync(cacheDir)) {
    const other = path.join(cacheDir, entry);
    if (!entry.startsWith(`${sourcePackage}_`) || entry.endsWith(".lock") || other === keep) continue;
    const unlock = tryAcquireLock(`${other}.lock`);
    if (!unlock) continue;
    try {
      log.write(`removing the kept build tree of another version: ${other}`);
      fs.rmSync(other, { recursive: true, force: true });
    } finally {
      unlock();
    }
  }
}
