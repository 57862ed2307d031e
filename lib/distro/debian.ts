import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { CommandLog } from "../exec";
import { BootstrapOptions, Distro, InstalledPackage, Isolated } from "./distro";

/** dpkg's package name rules (Debian policy 5.6.1), with an optional `=version` or `/release` pin. */
const PACKAGE_SPEC = /^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+|\/[a-z0-9-]+)?$/;

/** apt options for the build only: no translations to download, retries on a flaky network. */
const BUILD_APT_OPTIONS = ['Acquire::Languages "none"', 'Acquire::Retries "3"'];

/** What images leave out unless they ask for docs: man is not even installed, and only C.UTF-8 is used. */
const NO_DOCS = [
  "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/info/*",
  "path-exclude=/usr/share/doc/*",
  "path-include=/usr/share/doc/*/copyright",
  "path-exclude=/usr/share/locale/*",
  "path-include=/usr/share/locale/locale.alias",
  "path-exclude=/usr/share/lintian/*",
];
const NO_DOCS_CONFIG = "etc/dpkg/dpkg.cfg.d/antidote-nodoc";

/** Files that exist in the tree only while it is built. */
const POLICY_RC_D = "usr/sbin/policy-rc.d";
const DPKG_BUILD_CONFIG = "etc/dpkg/dpkg.cfg.d/antidote-build";
const APT_BUILD_CONFIG = "etc/apt/apt.conf.d/99antidote-build";

/**
 * Debian, bootstrapped with mmdebstrap: it resolves dependencies with apt, installs from one dpkg run per phase and
 * honours SOURCE_DATE_EPOCH, which made it more than twice as fast as debootstrap here (figures in docs/rootfs.md).
 */
export const debian: Distro = {
  name: "debian",
  suites: ["bookworm", "trixie"],
  defaultMirror: "http://deb.debian.org/debian",
  defaultSecurityMirror: "http://deb.debian.org/debian-security",
  packageCache: "var/cache/apt/archives",

  basePackages(): string[] {
    return [
      // init and device management; networkd (DHCP on the primary NIC) is part of systemd
      "systemd",
      "systemd-sysv",
      "udev",
      "dbus",
      "libpam-systemd",
      "kmod",
      // what every lab VM is reached and administered with
      "openssh-server",
      "sudo",
      "iproute2",
      "iputils-ping",
      "netbase",
    ];
  },

  isPackageSpec(name: string): boolean {
    return PACKAGE_SPEC.test(name);
  },

  async bootstrap(run: Isolated, root: string, options: BootstrapOptions): Promise<void> {
    const sources = [`deb ${options.mirror} ${options.suite} main`];
    if (options.updates) {
      sources.push(
        `deb ${options.mirror} ${options.suite}-updates main`,
        `deb ${options.securityMirror} ${options.suite}-security main`,
      );
    }
    await run(
      "mmdebstrap",
      [
        "--mode=root",
        "--format=directory",
        "--variant=minbase",
        `--architectures=${options.architecture}`,
        `--include=${options.packages.join(",")}`,
        // The root already holds the shared package cache, which mmdebstrap must neither refuse nor empty: the
        // step syncs new downloads back into the cache and cleans the tree itself.
        "--skip=check/empty,essential/unlink,cleanup/apt/cache,cleanup/apt/lists",
        // The tree is thrown away if the build dies, so dpkg need not fsync every file (a third of the time here).
        "--dpkgopt=force-unsafe-io",
        ...(options.docs ? [] : NO_DOCS.map((option) => `--dpkgopt=${option}`)),
        ...BUILD_APT_OPTIONS.map((option) => `--aptopt=${option}`),
        options.suite,
        root,
        ...sources,
      ],
      {
        SOURCE_DATE_EPOCH: String(options.sourceDateEpoch),
        ...(options.proxy ? { http_proxy: options.proxy } : {}),
      },
    );
  },

  prepareTree(root: string, options: { docs: boolean }): void {
    // Package scripts must not start services inside the build (Debian policy's policy-rc.d interface).
    for (const dir of ["usr/sbin", "etc/dpkg/dpkg.cfg.d", "etc/apt/apt.conf.d"]) {
      fs.mkdirSync(path.join(root, dir), { recursive: true });
    }
    const policy = path.join(root, POLICY_RC_D);
    fs.writeFileSync(
      policy,
      "#!/bin/sh\n# Written by the antidote-images rootfs step while it builds.\nexit 101\n",
    );
    fs.chmodSync(policy, 0o755);
    fs.writeFileSync(path.join(root, DPKG_BUILD_CONFIG), "force-unsafe-io\n");
    // Also on a base tree: a derived image that keeps docs gets them for the packages it adds.
    if (options.docs) fs.rmSync(path.join(root, NO_DOCS_CONFIG), { force: true });
    else fs.writeFileSync(path.join(root, NO_DOCS_CONFIG), NO_DOCS.join("\n") + "\n");
    fs.writeFileSync(path.join(root, APT_BUILD_CONFIG), BUILD_APT_OPTIONS.map((o) => `${o};\n`).join(""));
  },

  cleanupTree(root: string): void {
    for (const file of [POLICY_RC_D, DPKG_BUILD_CONFIG, APT_BUILD_CONFIG]) {
      fs.rmSync(path.join(root, file), { force: true });
    }
    removeFiles(path.join(root, "var/lib/apt/lists"));
    removeFiles(path.join(root, "var/cache/apt"));
  },

  repositories(root: string): string {
    const hash = createHash("sha256");
    for (const dir of [
      "etc/apt/sources.list",
      "etc/apt/sources.list.d",
      "etc/apt/trusted.gpg.d",
      "etc/apt/keyrings",
    ]) {
      const top = path.join(root, dir);
      if (!fs.existsSync(top)) continue;
      const files = fs.statSync(top).isDirectory()
        ? fs.readdirSync(top, { recursive: true, encoding: "utf8" }).map((f) => path.join(top, f))
        : [top];
      for (const file of files.sort()) {
        if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
        hash.update(`${path.relative(root, file)}\0`).update(fs.readFileSync(file));
      }
    }
    return hash.digest("hex");
  },

  refreshCommand(): string[] {
    return ["apt-get", "update", "-q"];
  },

  installCommand(packages: string[]): string[] {
    return ["apt-get", "install", "-y", "-q", "--no-install-recommends", ...packages];
  },

  async listPackages(log: CommandLog, root: string): Promise<InstalledPackage[]> {
    const { stdout } = await log.exec(
      "dpkg-query",
      [
        `--admindir=${path.join(root, "var/lib/dpkg")}`,
        "-W",
        "-f=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n",
      ],
      { capture: true },
    );
    return stdout
      .split("\n")
      .map((line) => line.split("\t"))
      .filter(([status]) => status?.startsWith("ii"))
      .map(([, name, version, architecture]) => ({ name, version, architecture }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  },
};

/** Deletes the regular files and symlinks below `dir`, keeping its directories (apt expects `partial/`). */
function removeFiles(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isDirectory()) fs.rmSync(path.join(entry.parentPath, entry.name), { force: true });
  }
}
