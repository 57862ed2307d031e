/**
 * Rootfs benchmark: builds debian-base cold (empty store, empty package cache), again warm (empty store, the
 * package cache of the first), then an image derived from it with a few packages, and prints each build's wall
 * time, its phases (from the build log), and the tarball's size. With `--debootstrap`, also times debootstrap
 * and mmdebstrap alone, cold and warm, on the same package set (the comparison in docs/rootfs.md).
 * No assertions: figures only.
 *
 *   npx ts-node bench/rootfs.ts [--debootstrap]
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { debian } from "../lib/distro/debian";
import { LocalStore } from "../lib/store/local";
import { buildRootfs, BuiltRootfs } from "../test/fixtures/rootfs";
import { tempDir } from "../test/helpers";

const CACHE = "packages-debian-amd64";
const DERIVED_PACKAGES = ["jq", "tcpdump", "curl"];

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The `# <phase>: <n> s` lines the step writes to its log. */
function phases(build: BuiltRootfs): string {
  return [...fs.readFileSync(build.log, "utf8").matchAll(/^# ([^:\n]+): ([\d.]+ s)$/gm)]
    .map(([, what, time]) => `${what} ${time}`)
    .join(", ");
}

/** A fresh store whose package cache is `cache` (or empty). */
function store(name: string, cache?: string): LocalStore {
  const s = new LocalStore(tempDir(`bench-rootfs-${name}`));
  if (cache) {
    fs.rmSync(s.cacheDir(CACHE), { recursive: true });
    fs.symlinkSync(cache, path.join(s.location, "cache", CACHE));
  }
  return s;
}

async function timed<T>(what: string, work: () => Promise<T>): Promise<[T, number]> {
  const started = Date.now();
  const result = await work();
  const elapsed = Date.now() - started;
  console.log(`${what}: ${seconds(elapsed)}`);
  return [result, elapsed];
}

async function pipeline() {
  const cold = store("cold");
  const [base] = await timed("cold minbase build (empty package cache)", () =>
    buildRootfs(cold, "debian-base"),
  );
  console.log(`  phases: ${phases(base)}`);
  const warm = store("warm", cold.cacheDir(CACHE));
  const [again] = await timed("warm minbase build (package cache filled)", () =>
    buildRootfs(warm, "debian-base"),
  );
  console.log(`  phases: ${phases(again)}`);
  console.log(`  same tarball as the cold build: ${again.sha256 === base.sha256}`);
  const [derived] = await timed(`derived image (+ ${DERIVED_PACKAGES.join(", ")})`, () =>
    buildRootfs(
      warm,
      "bench-derived",
      { image: "bench-derived", packages: DERIVED_PACKAGES },
      { base: again },
    ),
  );
  console.log(`  phases: ${phases(derived)}`);
  console.log(
    `base tarball: ${mib(base.size)} compressed, ${mib((base.outputs.installedSizeKiB as number) * 1024)} ` +
      `unpacked, ${base.outputs.packages} packages`,
  );
  console.log(`derived tarball: ${mib(derived.size)}, ${derived.outputs.packages} packages`);
  for (const s of [cold, warm]) fs.rmSync(s.location, { recursive: true, force: true });
}

/** Both bootstrappers alone, on the package set the step installs, each cold then warm. */
function bootstrappers() {
  const include = debian.basePackages("bookworm").join(",");
  const dir = tempDir("bench-bootstrappers");
  const run = (what: string, command: string[]) => {
    const started = Date.now();
    execFileSync("unshare", ["--mount", "--propagation", "private", "--fork", ...command], {
      stdio: "ignore",
    });
    console.log(`${what}: ${seconds(Date.now() - started)}`);
  };
  const debootstrapCache = path.join(dir, "debootstrap-cache");
  const mmdebstrapCache = path.join(dir, "mmdebstrap-cache");
  fs.mkdirSync(debootstrapCache);
  fs.mkdirSync(mmdebstrapCache);
  for (const pass of ["cold", "warm"]) {
    run(`debootstrap ${pass}`, [
      "debootstrap",
      "--variant=minbase",
      `--include=${include}`,
      `--cache-dir=${debootstrapCache}`,
      "bookworm",
      path.join(dir, `debootstrap-${pass}`),
      debian.defaultMirror,
    ]);
    for (const [label, options] of [
      ["", []],
      [" --dpkgopt=force-unsafe-io", ["--dpkgopt=force-unsafe-io"]],
    ] as const) {
      const root = path.join(dir, `mmdebstrap-${pass}${label ? "-unsafe" : ""}`);
      run(`mmdebstrap ${pass}${label}`, [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        `--include=${include}`,
        "--skip=essential/unlink,cleanup/apt/cache",
        ...options,
        `--setup-hook=mkdir -p "$1/var/cache/apt/archives" && cp -al ${mmdebstrapCache}/. "$1/var/cache/apt/archives/"`,
        `--customize-hook=cp -aln "$1"/var/cache/apt/archives/*.deb ${mmdebstrapCache}/ || true`,
        "bookworm",
        root,
        debian.defaultMirror,
      ]);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

async function main() {
  console.log(
    `${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  if (process.argv.includes("--debootstrap")) bootstrappers();
  await pipeline();
  console.log(
    `load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
