import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { StepLog } from "../log";
import { BuildOutput } from "../../store/store";
import { StepContext, StepDefinition } from "../step";
import { BUILD_TREE_CACHE, BuildTree, claimBuildTree } from "./build-tree";
import { fragmentRole, KernelStepArgs, parseKernelArgs } from "./args";
import { Fragment, generateConfig } from "./config";
import { KernelSource, prepareKernelSource } from "./source";

export { fragmentRole, KernelStepArgs } from "./args";

/** Where in the store's caches the kernel step keeps extracted source trees and its ccache. */
export const SOURCE_CACHE = "kernel-source";
export const CCACHE_CACHE = "ccache";

/** How `make` is invoked for one build: the same arguments and environment for the config phase and the compile. */
export interface KernelMake {
  makeArgs: string[];
  env: Record<string, string>;
}

/**
 * `make` settings for an out-of-tree build of `source` in `buildDir`. Everything that could leak the build machine
 * or the time into the kernel is fixed (user, host, timestamp from the package's changelog, build number), and
 * the compiler goes through ccache with a cache shared by every build in the store. The source tree sits at a fixed
 * path in the store's cache, so its absolute paths in compiler arguments are the same from one build to the next;
 * only the build directory moves, and ccache is told not to hash it. No `CCACHE_BASEDIR`: it would hand the
 * compiler relative source paths, which kbuild's `-fmacro-prefix-map=<tree>/=` does not match, and every
 * `__FILE__` in the kernel would then carry the store's location.
 */
export function kernelMake(
  source: KernelSource,
  buildDir: string,
  localVersion: string,
  ccacheDir: string,
): KernelMake {
  return {
    makeArgs: [
      "-C",
      source.dir,
      `O=${buildDir}`,
      "ARCH=x86_64",
      "CC=ccache gcc",
      "HOSTCC=ccache gcc",
      `LOCALVERSION=${localVersion}`,
    ],
    env: {
      KBUILD_BUILD_TIMESTAMP: source.date,
      KBUILD_BUILD_USER: "antidote",
      KBUILD_BUILD_HOST: "antidote-images",
      SOURCE_DATE_EPOCH: String(source.sourceDateEpoch),
      CCACHE_DIR: ccacheDir,
      CCACHE_NOHASHDIR: "1",
      CCACHE_MAXSIZE: "5G",
      // make's messages in English whatever the host's locale, for the log and for parsing.
      LC_ALL: "C",
    },
  };
}

/**
 * Builds a minimal Linux kernel from the distribution's kernel source package: base config + fragments (checked),
 * then `make bindeb-pkg`. Outputs `vmlinuz` (primary), `config`, `System.map`, the `linux-image-*.deb` and, when
 * the config enables modules, `modules/`.
 */
export const kernelStep: StepDefinition<KernelStepArgs> = {
  kind: "kernel",
  // 2: __FILE__ strings no longer carry the store's path (the kernel's bytes are the same in every store).
  // 3: the package's changelog is dated from the source, not the clock (the .deb is the same in every build).
  version: 3,
  parseArgs: parseKernelArgs,
  async run(ctx) {
    const { args, log } = ctx;
    const fragments: Fragment[] = args.fragments.map((name) => {
      const file = ctx.files[fragmentRole(name)];
      if (!file) throw new Error(`fragment ${name} is listed in the arguments but has no input file`);
      return { name, path: file };
    });
    const source = await prepareKernelSource({
      sourcePackage: args.sourcePackage,
      version: args.sourceVersion,
      cacheDir: ctx.store.cacheDir(SOURCE_CACHE),
      work: ctx.work,
      log,
    });
    const tree = claimBuildTree(
      ctx.store.cacheDir(BUILD_TREE_CACHE),
      args.sourcePackage,
      args.sourceVersion,
      ctx.work,
      log,
    );
    try {
      const result = await buildKernel(ctx, source, fragments, tree);
      tree.release(true);
      return result;
    } catch (err) {
      // A command that failed by itself leaves kbuild's tree consistent (it deletes a target whose recipe failed);
      // one killed by an abort may leave a half-written object behind.
      tree.release(!ctx.signal.aborted);
      throw err;
    }
  },
};

/** Configures, checks and compiles the kernel in `tree`, then copies the outputs into `ctx.out`. */
async function buildKernel(
  ctx: StepContext<KernelStepArgs>,
  source: KernelSource,
  fragments: Fragment[],
  tree: BuildTree,
): Promise<BuildOutput> {
  const { args, log, out } = ctx;
  const started = Date.now();
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)} s`;
  const buildDir = tree.dir;
  const { makeArgs, env } = kernelMake(source, buildDir, args.localVersion, ctx.store.cacheDir(CCACHE_CACHE));

  const config = await generateConfig({
    srcDir: source.dir,
    buildDir,
    base: args.base,
    fragments,
    log,
    makeArgs,
    env,
  });
  const release = await kernelRelease(log, makeArgs, env);
  const jobs = os.availableParallelism();
  log.progress(
    `kernel: ${release}: config check passed (${config.checked} options); compiling with ${jobs} jobs, ` +
      `${tree.incremental ? "updating the kept build tree" : "full build"} (${elapsed()})`,
  );

  // The Debian revision of the source names the package's revision (and the kernel's build number, #2 for
  // 6.1.192-2), so a newer Debian source of the same release installs as an upgrade.
  const revision = args.sourceVersion.slice(args.sourceVersion.lastIndexOf("-") + 1);
  await log.exec("make", [...makeArgs, `-j${jobs}`, "bindeb-pkg"], {
    env: {
      ...env,
      KDEB_PKGVERSION: `${release}-${revision}`,
      PATH: `${sourceDateTools(ctx.work)}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    },
  });

  const copy = (from: string, to: string) => fs.copyFileSync(path.join(buildDir, from), path.join(out, to));
  copy("arch/x86/boot/bzImage", "vmlinuz");
  copy(".config", "config");
  copy("System.map", "System.map");
  // dpkg-buildpackage writes next to the build directory; the -dbg, headers and libc-dev packages stay out.
  const debs = fs
    .readdirSync(tree.packageDir)
    .filter((f) => /^linux-image-.*\.deb$/.test(f) && !/-dbg_/.test(f));
  if (debs.length !== 1)
    throw new Error(`expected one linux-image .deb from bindeb-pkg, found: ${debs.join(", ") || "none"}`);
  fs.copyFileSync(path.join(tree.packageDir, debs[0]), path.join(out, debs[0]));

  const modules = config.values.get("MODULES") === "y";
  if (modules) {
    await log.exec(
      "make",
      [
        ...makeArgs,
        `INSTALL_MOD_PATH=${path.join(out, "modules")}`,
        "INSTALL_MOD_STRIP=1",
        "modules_install",
      ],
      { env },
    );
  }
  const bzImageBytes = fs.statSync(path.join(out, "vmlinuz")).size;
  log.progress(
    `kernel: ${release}: bzImage ${(bzImageBytes / 1048576).toFixed(1)} MiB, ${debs[0]} (${elapsed()})`,
  );
  return {
    primary: "vmlinuz",
    outputs: {
      release,
      sourcePackage: args.sourcePackage,
      sourceVersion: args.sourceVersion,
      deb: debs[0],
      bzImageBytes,
      configOptionsChecked: config.checked,
      modules,
    },
  };
}

/**
 * A directory for the front of `PATH` holding a `date` that answers with `SOURCE_DATE_EPOCH` when asked for the
 * current time: the kernel's `mkdebian` (6.1) dates the changelog it installs into the package with `date -R`, so
 * without it every build's `.deb` differs. A `date` asked about another time (`-d`, `-r`) or to set the clock is
 * the real one.
 */
function sourceDateTools(work: string): string {
  const dir = path.join(work, "source-date-bin");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "date"),
    [
      "#!/bin/sh",
      'for arg in "$@"; do',
      '  case "$arg" in -d*|--date*|-r*|--reference*|-s*|--set*|-f*|--file*) exec /bin/date "$@" ;; esac',
      "done",
      'exec /bin/date -d "@${SOURCE_DATE_EPOCH:?}" "$@"',
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  return dir;
}

/** `uname -r` of the configured kernel, e.g. `6.1.192-antidote`. */
async function kernelRelease(log: StepLog, makeArgs: string[], env: Record<string, string>): Promise<string> {
  const { stdout } = await log.exec("make", [...makeArgs, "-s", "--no-print-directory", "kernelrelease"], {
    env,
    capture: true,
  });
  const release = stdout.trim().split("\n").pop() ?? "";
  if (!/^\d+\.\d+\.\d+\S*$/.test(release))
    throw new Error(`make kernelrelease printed ${JSON.stringify(stdout)}`);
  return release;
}
