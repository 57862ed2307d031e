import { debian } from "../../distro/debian";
import { Distro } from "../../distro/distro";
import { Json } from "../../keys";
import { argsObject, StepArgsError } from "../step";
import { isCryptHash } from "./password";

/** Distribution families the step can build, by name. */
export const distros: Record<string, Distro> = { debian };

/** The ext4 label of the root file system: fstab mounts it, the disk step creates it. */
export const ROOT_LABEL = "antidote-root";

/** A file copied into the image after package installation, before install.sh. */
export interface RootfsFile {
  /** Input role whose contents are copied (its contents are part of the key). */
  role: string;
  /** Absolute path in the image. */
  path: string;
  /** Octal mode, four digits. */
  mode: string;
  owner: string;
  group: string;
}

/** The rootfs step's normalized arguments; every field is part of the key. */
export interface RootfsStepArgs {
  distro: string;
  suite: string;
  mirror: string;
  /** Also install from `<suite>-updates` and `<suite>-security`. */
  updates: boolean;
  securityMirror: string;
  architecture: string;
  /** Keep manual pages, documentation and translations (left out by default: a third of a minimal tree). */
  docs: boolean;
  /** Packages installed on top of the base set, sorted. */
  packages: string[];
  hostname: string;
  user: {
    name: string;
    /** crypt(3) hash for /etc/shadow; the plaintext never reaches the step. */
    passwordHash: string;
    /** Supplementary groups, created when missing. */
    groups: string[];
  };
  /**
   * systemd units the lesson configuration sets up (the image's services, e.g. "frr.service"), sorted: ordered after
   * antidote-configure.service, so at boot they start once, with the lesson's configuration in place.
   */
  lessonServices: string[];
  /** Input roles of the author's scripts, in the order they run. */
  hooks: { pre: string[]; install: string | null; post: string[] };
  /**
   * Input role (`playbook/<file>`) of the Ansible playbook run after the files, before install.sh; the other
   * `playbook/…` roles are its folder. Null when there is none.
   */
  playbook: string | null;
  files: RootfsFile[];
  /** Timestamps written during the build are clamped to this (seconds since the epoch). */
  sourceDateEpoch: number;
  /**
   * What the program knows about the archive's state (a snapshot name, the digest of the suite's InRelease): only
   * part of the key, so a moved archive rebuilds the image. Null when the archive is taken as it is.
   */
  archiveState: string | null;
}

export const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
export const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const FILE_MODE = /^0?[0-7]{3}$/;
/** A systemd unit name with its type, e.g. "frr.service" (the component adds ".service" to a bare name). */
export const UNIT_NAME = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|path|target)$/;
export const HOOK_ROLE = { pre: /^pre\/\d+-[^/]+$/, post: /^post\/\d+-[^/]+$/ };
const PLAYBOOK_ROLE = /^playbook\/[^/]+$/;

/** Checks the step's arguments, naming the first bad field. Also used by the component at program time. */
export function parseRootfsArgs(raw: Json): RootfsStepArgs {
  const args = argsObject(raw);
  const distro = distros[str(args, "distro")];
  if (!distro) throw new StepArgsError("distro", `one of ${Object.keys(distros).join(", ")}`, args.distro);
  const suite = str(args, "suite");
  if (!distro.suites.includes(suite)) {
    throw new StepArgsError(
      "suite",
      `a ${distro.name} release this step knows (${distro.suites.join(", ")})`,
      suite,
    );
  }
  const mirror = url(args, "mirror");
  const securityMirror = url(args, "securityMirror");
  if (typeof args.updates !== "boolean") throw new StepArgsError("updates", "true or false", args.updates);
  const architecture = str(args, "architecture");
  if (architecture !== "amd64") throw new StepArgsError("architecture", '"amd64"', architecture);

  if (typeof args.docs !== "boolean") throw new StepArgsError("docs", "true or false", args.docs);
  const packages = strList(args, "packages");
  // Named by value, not index: the component sorts the list.
  for (const name of packages) {
    if (!distro.isPackageSpec(name)) throw new StepArgsError("packages", "package names", name);
  }

  const hostname = str(args, "hostname");
  if (!HOSTNAME.test(hostname)) {
    throw new StepArgsError(
      "hostname",
      "a host name (lower-case letters, digits and '-', at most 63)",
      hostname,
    );
  }

  const user = argsObject(args.user ?? null, "user");
  const userName = str(user, "name", "user.name");
  if (!USER_NAME.test(userName))
    throw new StepArgsError("user.name", "a user name like 'antidote'", userName);
  const passwordHash = str(user, "passwordHash", "user.passwordHash");
  if (!isCryptHash(passwordHash)) {
    throw new StepArgsError("user.passwordHash", "a sha512-crypt or yescrypt hash", "(not shown)");
  }
  const groups = strList(user, "groups", "user.groups");
  for (const group of groups) {
    if (!USER_NAME.test(group)) throw new StepArgsError("user.groups", "group names like 'netshow'", group);
  }

  const lessonServices = strList(args, "lessonServices");
  for (const unit of lessonServices) {
    if (!UNIT_NAME.test(unit))
      throw new StepArgsError("lessonServices", "systemd unit names like 'frr.service'", unit);
  }

  const hooks = argsObject(args.hooks ?? null, "hooks");
  const pre = strList(hooks, "pre", "hooks.pre");
  const post = strList(hooks, "post", "hooks.post");
  pre.forEach((role, i) => {
    if (!HOOK_ROLE.pre.test(role))
      throw new StepArgsError(`hooks.pre[${i}]`, "a role 'pre/<n>-<name>'", role);
  });
  post.forEach((role, i) => {
    if (!HOOK_ROLE.post.test(role))
      throw new StepArgsError(`hooks.post[${i}]`, "a role 'post/<n>-<name>'", role);
  });
  if (hooks.install !== null && hooks.install !== "install.sh") {
    throw new StepArgsError("hooks.install", '"install.sh" or null', hooks.install);
  }

  const playbook = args.playbook;
  if (playbook !== null && (typeof playbook !== "string" || !PLAYBOOK_ROLE.test(playbook))) {
    throw new StepArgsError("playbook", "a role 'playbook/<file>' or null", playbook);
  }

  if (!Array.isArray(args.files)) throw new StepArgsError("files", "a list", args.files);
  const seen = new Set<string>();
  const files = args.files.map((entry, i) => {
    const field = `files[${i}]`;
    const file = argsObject(entry, field);
    const target = str(file, "path", `${field}.path`);
    if (!target.startsWith("/") || target.endsWith("/") || target.split("/").some((p) => p === "..")) {
      throw new StepArgsError(`${field}.path`, "an absolute file path without '..'", target);
    }
    if (seen.has(target)) throw new StepArgsError(`${field}.path`, "a path no other file has", target);
    seen.add(target);
    const mode = str(file, "mode", `${field}.mode`);
    if (!FILE_MODE.test(mode)) throw new StepArgsError(`${field}.mode`, 'an octal mode like "0644"', mode);
    const owner = str(file, "owner", `${field}.owner`);
    const group = str(file, "group", `${field}.group`);
    if (!USER_NAME.test(owner)) throw new StepArgsError(`${field}.owner`, "a user name", owner);
    if (!USER_NAME.test(group)) throw new StepArgsError(`${field}.group`, "a group name", group);
    return {
      role: str(file, "role", `${field}.role`),
      path: target,
      mode: mode.padStart(4, "0"),
      owner,
      group,
    };
  });

  const sourceDateEpoch = args.sourceDateEpoch;
  if (typeof sourceDateEpoch !== "number" || !Number.isInteger(sourceDateEpoch) || sourceDateEpoch < 0) {
    throw new StepArgsError("sourceDateEpoch", "whole seconds since 1970", sourceDateEpoch);
  }
  const archiveState = args.archiveState;
  if (archiveState !== null && typeof archiveState !== "string") {
    throw new StepArgsError("archiveState", "a string or null", archiveState);
  }

  return {
    distro: distro.name,
    suite,
    mirror,
    updates: args.updates,
    securityMirror,
    architecture,
    docs: args.docs,
    packages,
    hostname,
    user: { name: userName, passwordHash, groups },
    lessonServices,
    hooks: { pre, install: hooks.install, post },
    playbook,
    files,
    sourceDateEpoch,
    archiveState,
  };
}

function str(obj: Record<string, Json>, key: string, field = key): string {
  const value = obj[key];
  if (typeof value !== "string" || value === "") throw new StepArgsError(field, "a non-empty string", value);
  return value;
}

/** A list of strings (what `packages`, `groups` and the hooks are); the component checks with it before normalizing. */
export function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

function strList(obj: Record<string, Json>, key: string, field = key): string[] {
  const value = obj[key];
  if (!isStringList(value)) throw new StepArgsError(field, "a list of strings", value);
  return value;
}

function url(obj: Record<string, Json>, key: string): string {
  const value = str(obj, key);
  if (!/^(https?|file):\/\/[^\s]+$/.test(value))
    throw new StepArgsError(key, "an http(s):// or file:// URL", value);
  return value.replace(/\/+$/, "");
}
