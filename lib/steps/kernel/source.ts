import * as fs from "fs";
import * as path from "path";
import { gunzipSync } from "zlib";
import { StepLog } from "../log";

/** An extracted Debian kernel source tree of one exact package version, kept in the store's cache. */
export interface KernelSource {
  /** The source tree. Read-only: builds are out of tree (`O=`), so one tree serves every build of this version. */
  dir: string;
  sourcePackage: string;
  /** Debian package version, e.g. `6.1.192-2`. */
  version: string;
  /** Date of the package's changelog entry, as RFC 2822 text: the build's fixed timestamp. */
  date: string;
  /** The same date in seconds since the epoch (`SOURCE_DATE_EPOCH`). */
  sourceDateEpoch: number;
}

/** `source.json` next to the cached tree: written before the tree is renamed into place. */
type SourceRecord = Omit<KernelSource, "dir">;

export interface PrepareSourceOptions {
  sourcePackage: string;
  version: string;
  /** Cache directory for extracted trees (the store's `kernel-source` cache). */
  cacheDir: string;
  /** Scratch directory for the package download. */
  work: string;
  log: StepLog;
}

/**
 * Returns the source tree of exactly `sourcePackage` at `version`: from the cache, else from the installed package
 * when its version matches, else downloaded with `apt-get download`. A version apt cannot provide fails the build;
 * there is no fallback to another version, since the version is part of the step's key.
 */
export async function prepareKernelSource(options: PrepareSourceOptions): Promise<KernelSource> {
  const { sourcePackage, version, cacheDir, log } = options;
  const entry = path.join(cacheDir, `${sourcePackage}_${version}`);
  const cached = readRecord(entry);
  if (cached) {
    log.write(`kernel source: ${sourcePackage} ${version} from the cache at ${entry}`);
    return { dir: path.join(entry, "src"), ...cached };
  }

  const packageRoot = await packageContents(options);
  const tarball = path.join(packageRoot, "usr/src", `${sourcePackage}.tar.xz`);
  const changelog = path.join(packageRoot, "usr/share/doc", sourcePackage, "changelog.Debian.gz");
  const { date, changelogVersion } = readChangelogHead(changelog);
  if (changelogVersion !== version) {
    throw new Error(`${changelog} is for version ${changelogVersion}, not the requested ${version}`);
  }

  // Extract next to the final place and rename, so a crash never leaves a tree that looks complete.
  fs.mkdirSync(cacheDir, { recursive: true });
  const partial = fs.mkdtempSync(`${entry}.partial-`);
  try {
    log.progress(`kernel: extracting ${path.basename(tarball)} ${version}`);
    await log.exec("tar", ["-xf", tarball, "-C", partial]);
    const tree = path.join(partial, sourcePackage);
    checkUpstreamVersion(tree, version);
    fs.renameSync(tree, path.join(partial, "src"));
    const record: SourceRecord = {
      sourcePackage,
      version,
      date,
      sourceDateEpoch: Math.floor(Date.parse(date) / 1000),
    };
    fs.writeFileSync(path.join(partial, "source.json"), JSON.stringify(record, null, 2));
    try {
      fs.renameSync(partial, entry);
    } catch (err) {
      // Another build extracted the same version first; its tree is as good as ours.
      if (!readRecord(entry)) throw err;
    }
  } finally {
    fs.rmSync(partial, { recursive: true, force: true });
  }
  const record = readRecord(entry);
  if (!record) throw new Error(`kernel source cache entry ${entry} is incomplete after extraction`);
  return { dir: path.join(entry, "src"), ...record };
}

/** The Debian version of an installed package, or undefined when it is not installed. */
export async function installedVersion(log: StepLog, pkg: string): Promise<string | undefined> {
  try {
    const { stdout } = await log.exec("dpkg-query", ["-W", "-f=${Status}\\t${Version}", pkg], {
      capture: true,
    });
    const [status, version] = stdout.split("\t");
    return status === "install ok installed" ? version : undefined;
  } catch {
    return undefined;
  }
}

/** A directory holding the package's files: `/` when the installed package has the version, else a download. */
async function packageContents(options: PrepareSourceOptions): Promise<string> {
  const { sourcePackage, version, work, log } = options;
  const installed = await installedVersion(log, sourcePackage);
  if (installed === version) {
    log.write(`kernel source: using the installed ${sourcePackage} ${version}`);
    return "/";
  }
  log.progress(
    `kernel: downloading ${sourcePackage} ${version} (installed: ${installed ?? "none"}) with apt-get download`,
  );
  const download = path.join(work, "download");
  fs.mkdirSync(download, { recursive: true });
  try {
    await log.exec("apt-get", ["download", `${sourcePackage}=${version}`], { cwd: download });
  } catch (err) {
    throw new Error(
      `${sourcePackage} ${version} is not installed (installed: ${installed ?? "none"}) and apt-get cannot download it ` +
        `(${(err as Error).message}); check 'apt-cache policy ${sourcePackage}' and run apt-get update`,
    );
  }
  const deb = fs.readdirSync(download).find((f) => f.endsWith(".deb"));
  if (!deb) throw new Error(`apt-get download ${sourcePackage}=${version} produced no .deb`);
  const root = path.join(work, "package");
  await log.exec("dpkg-deb", ["-x", path.join(download, deb), root]);
  return root;
}

/** Version and date of the newest changelog entry: `pkg (version) dist; ...` then ` -- Maintainer <mail>  date`. */
export function readChangelogHead(file: string): { changelogVersion: string; date: string } {
  const text = gunzipSync(fs.readFileSync(file)).toString("utf8");
  const changelogVersion = /^\S+ \(([^)]+)\)/.exec(text)?.[1];
  const date = /^ -- .*?>\s+(.+)$/m.exec(text)?.[1]?.trim();
  if (!changelogVersion || !date || Number.isNaN(Date.parse(date))) {
    throw new Error(`${file}: cannot read the version and date of its first entry`);
  }
  return { changelogVersion, date };
}

/** The tree's Makefile must be the upstream release the Debian version names (6.1.192 for 6.1.192-2). */
function checkUpstreamVersion(tree: string, version: string): void {
  const makefile = fs.readFileSync(path.join(tree, "Makefile"), "utf8");
  const field = (name: string) => new RegExp(`^${name} = (\\d+)$`, "m").exec(makefile)?.[1];
  const upstream = `${field("VERSION")}.${field("PATCHLEVEL")}.${field("SUBLEVEL")}`;
  if (!version.startsWith(`${upstream}-`)) {
    throw new Error(`the source tree is Linux ${upstream}, which does not match package version ${version}`);
  }
}

function readRecord(entry: string): SourceRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(entry, "source.json"), "utf8")) as SourceRecord;
  } catch {
    return undefined;
  }
}
