import { CommandLog } from "../exec";

/** One installed package: the image's bill of materials. */
export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
}

/** What a distribution needs to create a tree: the rootfs step's arguments that concern the archive. */
export interface BootstrapOptions {
  suite: string;
  mirror: string;
  /** Also install from the suite's updates and security archives. */
  updates: boolean;
  securityMirror: string;
  architecture: string;
  /** Packages installed on top of the distribution's minimal set. */
  packages: string[];
  /** Seconds since the epoch that timestamps written during the build are pinned to. */
  sourceDateEpoch: number;
  /** Keep manual pages, documentation and message translations. */
  docs: boolean;
  /** HTTP proxy for package downloads (apt-cacher-ng and the like), or none. */
  proxy?: string;
}

/**
 * Runs a host command in a private mount and PID namespace, with its output in the build log: whatever it mounts
 * and whatever it starts ends with it, even when it is killed.
 */
export type Isolated = (command: string, args: string[], env?: Record<string, string>) => Promise<void>;

/**
 * A distribution family: how to create a minimal tree from its archive and manage packages in it. The rootfs step
 * does everything else (mounts, provisioning, packing) the same way for every family; `docs/distros.md` says what a
 * dnf-based family (Rocky, CentOS Stream) would implement here.
 */
export interface Distro {
  readonly name: string;
  /** Releases this implementation knows how to configure. */
  readonly suites: readonly string[];
  readonly defaultMirror: string;
  readonly defaultSecurityMirror: string;
  /** Packages every lab VM needs on top of the minimal system: init, udev, DHCP client, sshd, sudo. */
  basePackages(suite: string): string[];
  /** Whether `name` is a valid package name, optionally with a version or release pin. */
  isPackageSpec(name: string): boolean;
  /**
   * Creates a minimal tree with `options.packages` in `root` (an existing directory whose package cache, at
   * {@link packageCache}, may already hold downloads). Runs inside a private mount namespace.
   */
  bootstrap(run: Isolated, root: string, options: BootstrapOptions): Promise<void>;
  /** Where the tree keeps downloaded packages, relative to its root: shared with other builds. */
  readonly packageCache: string;
  /**
   * Prepares a tree for building in it: keeps package installs from starting services. Without `docs`, the tree's
   * package manager leaves out documentation from then on (also in images derived from it).
   */
  prepareTree(root: string, options: { docs: boolean }): void;
  /** Undoes {@link prepareTree} and removes what only the build needed (package indexes and downloads). */
  cleanupTree(root: string): void;
  /** A digest of the tree's repository configuration (sources and keys): what, when it moves, needs a refresh. */
  repositories(root: string): string;
  /** Refreshes the package indexes, in the tree. */
  refreshCommand(): string[];
  /** Installs packages, in the tree. */
  installCommand(packages: string[]): string[];
  /** Reads the installed packages from the tree without entering it. */
  listPackages(log: CommandLog, root: string): Promise<InstalledPackage[]>;
}
