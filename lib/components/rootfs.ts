import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { debian } from "../distro/debian";
import { parseRootfsArgs, RootfsStepArgs, rootfsScriptFiles, rootfsStep } from "../steps/rootfs";
import { isStringList } from "../steps/rootfs/args";
import { playbookFiles, playbookRole } from "../steps/rootfs/playbook";
import { imagePasswordHash } from "../steps/rootfs/password";
import { Json } from "../keys";
import { LAB_LOGIN } from "../lab-login";
import { StepArgsError } from "../steps/step";
import { StepComponent } from "./step-command";

/** A file copied into the image after package installation, before install.sh. */
export interface RootfsFileArgs {
  /** Path of the file on the build host; its contents are part of the key, its path is not. */
  source: string;
  /** Absolute path in the image; missing directories are created (root, 0755). */
  path: string;
  /** Octal mode, as a string ("0640") or a number (0o640). @default "0644" */
  mode?: string | number;
  /** Owner, by name, as the image knows it (a package may have created it). @default "root" */
  owner?: string;
  /** @default "root" */
  group?: string;
}

export interface RootfsArgs {
  /** Image the root file system belongs to, for messages and records. @default the component's name */
  image?: string;
  /**
   * Rootfs to start from: its tarball is unpacked instead of bootstrapping, then this one's packages, user, files
   * and hooks are applied. Suite, mirrors, updates and sourceDateEpoch default to the base's.
   * @default none: bootstrap from the archive
   */
  base?: Rootfs;
  /** Debian release: "bookworm" or "trixie". @default "bookworm" */
  suite?: string;
  /** Debian archive to install from. @default "http://deb.debian.org/debian" */
  mirror?: string;
  /** Archive of security updates. @default "http://deb.debian.org/debian-security" */
  securityMirror?: string;
  /** Also install from `<suite>-updates` and `<suite>-security`. @default true */
  updates?: boolean;
  /**
   * Keep manual pages, documentation (beyond copyright files) and message translations. They are a quarter of a
   * minimal tree and of no use in a lab VM without `man` or locales. @default false (or the base's)
   */
  docs?: boolean;
  /** Packages installed on top of the base set (systemd, udev, openssh-server, sudo, iproute2...). @default [] */
  packages?: string[];
  /** Host name of the VM. @default the image name */
  hostname?: string;
  /** Login user. @default "antidote" */
  user?: string;
  /**
   * The user's password in plain text. Only its sha512-crypt hash (salt derived from image and user names, so it is
   * stable) leaves the program: the plaintext is in no state, key, log or image. Pass a secret as a plain string,
   * e.g. `new pulumi.Config().get("password")` (works for `secure:` values) or `process.env.ANTIDOTE_PASSWORD`.
   * @default "antidotepassword"
   */
  password?: string;
  /** A ready crypt(3) hash (sha512-crypt or yescrypt) instead of `password`. @default the hash of `password` */
  passwordHash?: string;
  /** Supplementary groups of the user, created when missing (e.g. "netshow", "netedit"). @default [] (plus the base's) */
  groups?: string[];
  /**
   * The services a lesson configures ("frr" or "frr.service"): at boot they start after antidote-configure has
   * applied the lesson, once, instead of before it and again after it. LabImage passes its metadata's `services`.
   * @default [] (plus the base's)
   */
  lessonServices?: string[];
  /** The image's install script, run in the image (with network) after packages and files. @default none */
  install?: string;
  /** Scripts run in the image before package installation, in order (e.g. to add a repository). @default [] */
  pre?: string[];
  /**
   * An Ansible playbook run against the image (ansible-playbook on the build host, through the chroot connection)
   * after packages, user and files, before install.sh. Its folder must be its own: every file in it (roles,
   * variables files, templates) is an input of the key. Modules need python3 in the image (a package).
   * @default none
   */
  playbook?: string;
  /** Scripts run in the image after install.sh, in order. @default [] */
  post?: string[];
  /** Files copied into the image (licenses, configuration). @default [] */
  files?: RootfsFileArgs[];
  /** Timestamps written during the build are clamped to this, for reproducibility. @default 1704067200 (2024-01-01) */
  sourceDateEpoch?: number;
  /**
   * The archive's state as the program sees it (a snapshot name, or the digest of the suite's InRelease): part of
   * the key only, so the image rebuilds exactly when the archive moved. @default none: the archive as it is
   */
  archiveState?: string;
}

/** 2024-01-01T00:00:00Z: before every build, so clamping pins every file written during one. */
export const DEFAULT_SOURCE_DATE_EPOCH = 1704067200;

/** What a Rootfs step is made of: its image, normalized arguments and input files by role. */
export interface RootfsInputs {
  image: string;
  args: RootfsStepArgs;
  files: Record<string, string>;
}

/**
 * Normalizes a Rootfs's arguments into step inputs (Pulumi-free, so tests and benchmarks build the very same step).
 * Fails naming the image, the step and the field: files that do not exist, and whatever the step's own argument
 * check rejects.
 */
export function rootfsInputs(name: string, args: RootfsArgs = {}, base?: RootfsStepArgs): RootfsInputs {
  const image = args.image ?? name;
  const fail = (field: string, expected: string, got: unknown): never => {
    throw new Error(`${image}: ${name}: bad argument ${new StepArgsError(field, expected, got).message}`);
  };
  // A derived image installs from its base's sources.list: these come from the base.
  for (const field of ["suite", "mirror", "securityMirror", "updates"] as const) {
    const value = typeof args[field] === "string" ? args[field].replace(/\/+$/, "") : args[field];
    if (base && value !== undefined && value !== base[field]) {
      fail(field, `the base's ${JSON.stringify(base[field])} (or nothing)`, args[field]);
    }
  }

  // Checked before they are deduplicated, spread or mapped: a string would turn into its characters.
  const list = (field: "packages" | "groups" | "lessonServices" | "pre" | "post"): string[] => {
    const value: unknown = args[field] ?? [];
    return isStringList(value) ? value : fail(field, "a list of strings", value);
  };
  const fileArgs = args.files ?? [];
  if (!Array.isArray(fileArgs)) fail("files", "a list", fileArgs);

  const files: Record<string, string> = { ...rootfsScriptFiles() };
  const addInput = (field: string, role: string, file: string) => {
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) fail(field, "an existing file", file);
    files[role] = file;
    return role;
  };
  const hookRoles = (field: "pre" | "post") =>
    list(field).map((file, i) => addInput(`${field}[${i}]`, `${field}/${i}-${path.basename(file)}`, file));

  const playbook = () => {
    const file = args.playbook as string;
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) fail("playbook", "an existing file", file);
    const folder = playbookFiles(file);
    if (typeof folder === "string") fail("playbook", folder, file);
    Object.assign(files, folder);
    return playbookRole(file);
  };

  const user = args.user ?? LAB_LOGIN.username;
  const baseGroups = base?.user.name === user ? base.user.groups : [];
  const raw = {
    distro: debian.name,
    suite: args.suite ?? base?.suite ?? "bookworm",
    mirror: args.mirror ?? base?.mirror ?? debian.defaultMirror,
    updates: args.updates ?? base?.updates ?? true,
    securityMirror: args.securityMirror ?? base?.securityMirror ?? debian.defaultSecurityMirror,
    architecture: "amd64",
    docs: args.docs ?? base?.docs ?? false,
    packages: [...new Set(list("packages"))].sort(),
    hostname: args.hostname ?? image,
    user: {
      name: user,
      passwordHash: args.passwordHash ?? imagePasswordHash(args.password ?? LAB_LOGIN.password, image, user),
      groups: [...new Set([...baseGroups, ...list("groups")])].sort(),
    },
    lessonServices: [
      ...new Set([
        ...(base?.lessonServices ?? []),
        ...list("lessonServices").map((unit) => (/\.[a-z]+$/.test(unit) ? unit : `${unit}.service`)),
      ]),
    ].sort(),
    hooks: {
      pre: hookRoles("pre"),
      install: args.install === undefined ? null : addInput("install", "install.sh", args.install),
      post: hookRoles("post"),
    },
    playbook: args.playbook === undefined ? null : playbook(),
    files: fileArgs.map((file, i) => ({
      role: addInput(`files[${i}].source`, `file:${file.path}`, file.source),
      path: file.path,
      mode: typeof file.mode === "number" ? file.mode.toString(8).padStart(4, "0") : (file.mode ?? "0644"),
      owner: file.owner ?? "root",
      group: file.group ?? "root",
    })),
    sourceDateEpoch: args.sourceDateEpoch ?? base?.sourceDateEpoch ?? DEFAULT_SOURCE_DATE_EPOCH,
    archiveState: args.archiveState ?? null,
  };
  try {
    // Normalized (sorted lists, URLs without trailing slashes, four-digit modes) before it is keyed.
    return { image, files, args: parseRootfsArgs(raw) };
  } catch (err) {
    if (err instanceof StepArgsError) throw new Error(`${image}: ${name}: bad argument ${err.message}`);
    throw err;
  }
}

/**
 * A root file system built from Debian's packages and provisioned for a lab VM: a reproducible `rootfs.tar.zst`,
 * its package manifest and `image.json`. Arguments are checked here, while the program runs, and every input
 * (arguments, scripts, files, base) is part of the key.
 */
export class Rootfs extends StepComponent {
  /** The step's normalized arguments (images built on this one inherit from them). */
  readonly stepArgs: RootfsStepArgs;

  constructor(name: string, args: RootfsArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    super("antidote:images:Rootfs", name, {}, opts);
    const inputs = rootfsInputs(name, args, args.base?.stepArgs);
    this.stepArgs = inputs.args;
    this.buildStep(name, {
      step: rootfsStep,
      image: inputs.image,
      args: inputs.args as unknown as Json,
      files: inputs.files,
      parents: args.base ? { base: args.base } : {},
    });
    this.registerStepOutputs();
  }
}
