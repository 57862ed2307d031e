import * as fs from "fs";
import * as path from "path";
import { requireProgram } from "../exec";
import { Json } from "../keys";
import { FILE_MODE, USER_NAME } from "./rootfs/args";
import { isCryptHash } from "./rootfs/password";
import { shellQuote } from "./rootfs/tree";
import { StepLog } from "./log";
import { argsObject, StepArgsError } from "./step";

/** A file put on an imported disk; its contents (input `role`) are part of the key. */
export interface ProvisionedFile {
  role: string;
  /** Absolute path on the disk; missing directories are created. */
  path: string;
  /** Octal mode, four digits. */
  mode: string;
}

/**
 * What is applied offline to a Linux-based vendor disk after conversion: a login user with its password hash and
 * passwordless sudo, sshd accepting passwords, files, a command run once at first boot.
 */
export interface DiskProvisioning {
  /** The login user: created when the disk lacks it; its password set. Null: the disk's users as they are. */
  user: { name: string; passwordHash: string; sudo: boolean } | null;
  /** Make sshd accept password logins, whatever the vendor's configuration says. */
  sshPasswordLogin: boolean;
  files: ProvisionedFile[];
  /** A shell command run once, as root, at the disk's first boot. */
  firstBoot: string | null;
}

/** Input roles of provisioned files. */
const FILE_ROLE = /^provision\/file\/\d+$/;

/** Checks a disk's provisioning, naming the first bad field (under `provision.`). */
export function parseDiskProvisioning(raw: Json): DiskProvisioning {
  const args = argsObject(raw, "provision");
  let user: DiskProvisioning["user"] = null;
  if (args.user !== null && args.user !== undefined) {
    const u = argsObject(args.user, "provision.user");
    if (typeof u.name !== "string" || !USER_NAME.test(u.name))
      throw new StepArgsError("provision.user.name", "a user name like 'admin'", u.name);
    if (typeof u.passwordHash !== "string" || !isCryptHash(u.passwordHash))
      throw new StepArgsError(
        "provision.user.passwordHash",
        "a sha512-crypt or yescrypt hash",
        "(not shown)",
      );
    if (typeof u.sudo !== "boolean") throw new StepArgsError("provision.user.sudo", "true or false", u.sudo);
    user = { name: u.name, passwordHash: u.passwordHash, sudo: u.sudo };
  }
  if (typeof args.sshPasswordLogin !== "boolean")
    throw new StepArgsError("provision.sshPasswordLogin", "true or false", args.sshPasswordLogin);
  if (!Array.isArray(args.files)) throw new StepArgsError("provision.files", "a list", args.files);
  const files = args.files.map((entry, i) => {
    const field = `provision.files[${i}]`;
    const file = argsObject(entry, field);
    if (typeof file.role !== "string" || !FILE_ROLE.test(file.role))
      throw new StepArgsError(`${field}.role`, "a role 'provision/file/<n>'", file.role);
    const target = file.path;
    if (
      typeof target !== "string" ||
      !target.startsWith("/") ||
      target.endsWith("/") ||
      target.includes("/../")
    )
      throw new StepArgsError(`${field}.path`, "an absolute file path without '..'", target);
    if (typeof file.mode !== "string" || !FILE_MODE.test(file.mode))
      throw new StepArgsError(`${field}.mode`, 'an octal mode like "0644"', file.mode);
    return { role: file.role, path: target, mode: file.mode.padStart(4, "0") };
  });
  const firstBoot = args.firstBoot ?? null;
  if (firstBoot !== null && (typeof firstBoot !== "string" || firstBoot.trim() === ""))
    throw new StepArgsError("provision.firstBoot", "a shell command or null", firstBoot);
  return { user, sshPasswordLogin: args.sshPasswordLogin, files, firstBoot };
}

/** The role of provisioned file `i`. */
export function provisionedFileRole(i: number): string {
  return `provision/file/${i}`;
}

/**
 * The script run in the disk's root (by virt-customize, with the disk's own tools) for the user, sudo and sshd. It
 * fails, naming what is missing, on a disk without useradd, sudo or sshd where they are asked for.
 */
export function provisioningScript(p: DiskProvisioning): string {
  const lines = ["#!/bin/sh", "set -eu", 'fail() { echo "provisioning: $*" >&2; exit 1; }'];
  if (p.user) {
    const user = p.user.name;
    lines.push(
      "command -v usermod >/dev/null || fail 'the disk has no usermod (shadow utilities): cannot set a login'",
      "shell=/bin/sh; [ -x /bin/bash ] && shell=/bin/bash",
      `id -u ${user} >/dev/null 2>&1 || useradd --create-home --shell "$shell" ${user}`,
      // A hash, never the password: it reaches the log as it is.
      `usermod --password ${shellQuote(p.user.passwordHash)} ${user}`,
    );
    if (p.user.sudo) {
      lines.push(
        "command -v sudo >/dev/null || fail 'the disk has no sudo: cannot give the login user sudo'",
        "mkdir -p /etc/sudoers.d",
        `echo '${user} ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/90-antidote-${user}`,
        `chmod 0440 /etc/sudoers.d/90-antidote-${user}`,
      );
    }
  }
  if (p.sshPasswordLogin) {
    // sshd keeps the first value it reads: put ours before everything, Include lines and vendor drop-ins too.
    lines.push(
      "[ -f /etc/ssh/sshd_config ] || fail 'the disk has no /etc/ssh/sshd_config: cannot enable password login'",
      "sed -i -e '/^# antidote: password login$/,+2d' /etc/ssh/sshd_config",
      "sed -i -e '1i # antidote: password login' -e '1i PasswordAuthentication yes' " +
        "-e '1i KbdInteractiveAuthentication yes' /etc/ssh/sshd_config",
    );
  }
  // virt-customize gave a disk without a machine id one, and a random seed, before this script: every VM of the disk
  // would share them. Empty, systemd makes a machine id at each VM's first boot (as finalize.sh leaves our images).
  lines.push(": >/etc/machine-id", "rm -f /var/lib/systemd/random-seed");
  return lines.join("\n") + "\n";
}

/** Fails early, before a download, when this build host cannot provision a disk. */
export function requireLibguestfs(): void {
  requireProgram("virt-customize", "libguestfs-tools", "the disk has provisioning");
}

/**
 * Applies the provisioning to a disk image file in place with libguestfs's virt-customize (its own appliance VM,
 * the direct backend, no network): the script above, then the files, then the first-boot command.
 */
export async function provisionDisk(
  log: StepLog,
  disk: string,
  format: string,
  p: DiskProvisioning,
  files: Record<string, string>,
  work: string,
): Promise<void> {
  const script = path.join(work, "provision.sh");
  fs.writeFileSync(script, provisioningScript(p), { mode: 0o700 });
  const operations = ["--run", script];
  for (const file of p.files) {
    const source = files[file.role];
    if (!source) throw new Error(`the step has no input file '${file.role}'`);
    operations.push(
      "--mkdir",
      path.posix.dirname(file.path),
      "--upload",
      `${source}:${file.path}`,
      "--chmod",
      `${file.mode}:${file.path}`,
    );
  }
  if (p.firstBoot) operations.push("--firstboot-command", p.firstBoot);
  await log.exec("virt-customize", ["--format", format, "--add", disk, "--no-network", ...operations], {
    env: { LIBGUESTFS_BACKEND: "direct" },
  });
}
