import * as fs from "fs";
import * as path from "path";
import { Json } from "../../keys";
import { StepContext, StepDefinition } from "../step";
import { distros, parseRootfsArgs, ROOT_LABEL, RootfsStepArgs } from "./args";
import { requireAnsible, runPlaybook, stagePlaybook } from "./playbook";
import { ImageTree, isolatedRunner, shareFiles, shellQuote, timed } from "./tree";

export { parseRootfsArgs, ROOT_LABEL } from "./args";
export type { RootfsFile, RootfsStepArgs } from "./args";

/** The artifact's files: other steps (disk, container) read them by these names. */
export const ROOTFS_TARBALL = "rootfs.tar.zst";
export const ROOTFS_MANIFEST = "manifest.json";
export const ROOTFS_IMAGE_INFO = "image.json";

/** How network interfaces are named in the image (see configure.sh and docs/rootfs.md). */
export const NET_NAMING = "kernel";

/**
 * Fast zstd with a 128 MiB window (what decoders accept by default): on a base tree as fast as the default level
 * and 8% smaller; level 15 was 7% smaller still but took 27 times as long (docs/rootfs.md). The output does not
 * depend on the thread count.
 */
const ZSTD = "zstd -T0 -3 --long=27 -q";

/** Scripts the step runs, by input role: the component passes them as files, so editing one changes the key. */
export const ROOTFS_SCRIPTS = ["chroot.sh", "configure.sh", "user.sh", "finalize.sh"] as const;

/** The stage-3 helpers every image carries (docs/lessons.md); configure.sh installs them from `stage3/`. */
export const STAGE3_FILES = [
  "antidote-configure",
  "antidote-configure.service",
  "antidote-resume",
  "antidote-resume.service",
] as const;

/** Role → path of the step's own scripts and of the stage-3 helpers, for the component's (and tests') `files`. */
export function rootfsScriptFiles(): Record<string, string> {
  const scripts = path.join(__dirname, "..", "..", "scripts");
  return Object.fromEntries([
    ...ROOTFS_SCRIPTS.map((name) => [`rootfs/${name}`, path.join(scripts, "rootfs", name)]),
    ...STAGE3_FILES.map((name) => [`stage3/${name}`, path.join(scripts, "stage3", name)]),
  ]);
}

/** `image.json`: what the disk, boot-test and container steps need to know about the image. */
export interface RootfsImageInfo {
  hostname: string;
  user: string;
  groups: string[];
  rootLabel: string;
  netNaming: string;
}

/** `manifest.json`: the image's bill of materials. */
export interface RootfsManifest {
  suite: string;
  architecture: string;
  packages: { name: string; version: string; architecture: string }[];
}

/**
 * A root file system from a distribution's packages, provisioned for a lab VM, as a reproducible tarball: bootstrap
 * (or unpack the `base` parent), base configuration, pre hooks, packages, login user, files, Ansible playbook,
 * install.sh, post hooks, clean-up, pack.
 */
export const rootfsStep: StepDefinition<RootfsStepArgs> = {
  kind: "rootfs",
  version: 1,
  parseArgs: parseRootfsArgs,
  run: buildRootfs,
};

async function buildRootfs(ctx: StepContext<RootfsStepArgs>) {
  const { args, log } = ctx;
  if (args.playbook) requireAnsible();
  const distro = distros[args.distro];
  const script = (name: (typeof ROOTFS_SCRIPTS)[number]) => input(ctx, `rootfs/${name}`);
  const root = path.join(ctx.work, "root");
  const stage = path.join(ctx.work, "stage");
  fs.mkdirSync(root);
  fs.mkdirSync(stage);
  const proxy = process.env.ANTIDOTE_APT_PROXY || process.env.http_proxy || undefined;
  const tree = new ImageTree(
    root,
    stage,
    script("chroot.sh"),
    {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: "/root",
      LANG: "C.UTF-8",
      DEBIAN_FRONTEND: "noninteractive",
      SOURCE_DATE_EPOCH: String(args.sourceDateEpoch),
      ANTIDOTE_IMAGE: ctx.spec.image,
      ANTIDOTE_USER: args.user.name,
      ...(proxy ? { http_proxy: proxy } : {}),
    },
    log,
  );
  const hooks = stageInputs(ctx, stage);

  const packageCache = ctx.store.cacheDir(`packages-${distro.name}-${args.architecture}`);
  const treeCache = path.join(root, distro.packageCache);
  const base = ctx.parents.base;
  // Without pre hooks (which may add repositories), the author's packages come with the bootstrap: one apt run less.
  const packagesWithBootstrap = !base && args.hooks.pre.length === 0;
  try {
    if (base) {
      const baseArgs = base.meta.inputs.args as { suite?: string };
      if (base.meta.kind !== "rootfs" || baseArgs.suite !== args.suite) {
        throw new Error(
          `the base must be a ${args.suite} rootfs, not a ${baseArgs.suite ?? base.meta.kind} one`,
        );
      }
      log.progress(`${ctx.spec.image}: unpacking base ${base.meta.image} (${base.key.slice(0, 12)})`);
      await timed(log, "unpacking the base", () =>
        log.exec("tar", [
          "--extract",
          "--zstd",
          `--file=${path.join(base.dir, ROOTFS_TARBALL)}`,
          `--directory=${root}`,
          "--numeric-owner",
          "--same-permissions",
          "--same-owner",
          "--xattrs",
          "--xattrs-include=security.capability",
        ]),
      );
      shareFiles(packageCache, treeCache, ".deb");
      distro.prepareTree(root, { docs: args.docs });
    } else {
      shareFiles(packageCache, treeCache, ".deb");
      // Before the bootstrap, so that documentation is left out from the first package on.
      distro.prepareTree(root, { docs: args.docs });
      log.progress(`${ctx.spec.image}: bootstrapping ${args.distro} ${args.suite} (mmdebstrap, minbase)`);
      await timed(log, "bootstrap", () =>
        distro.bootstrap(isolatedRunner(log), root, {
          suite: args.suite,
          mirror: args.mirror,
          updates: args.updates,
          securityMirror: args.securityMirror,
          architecture: args.architecture,
          packages: [...distro.basePackages(args.suite), ...(packagesWithBootstrap ? args.packages : [])],
          sourceDateEpoch: args.sourceDateEpoch,
          docs: args.docs,
          proxy,
        }),
      );
    }

    log.progress(`${ctx.spec.image}: configuring`);
    await tree.run("base configuration (configure.sh)", ["/bin/sh", "/run/antidote/configure.sh"], {
      ANTIDOTE_HOSTNAME: args.hostname,
      ANTIDOTE_ROOT_LABEL: ROOT_LABEL,
    });
    // A base image's package indexes were removed when it was packed.
    if (base) await tree.run("package index refresh", distro.refreshCommand());
    const sources = distro.repositories(root);
    for (const hook of hooks.pre) await runHook(ctx, tree, hook);
    if (!packagesWithBootstrap && args.packages.length > 0) {
      log.progress(`${ctx.spec.image}: installing ${args.packages.join(" ")}`);
      // Indexes are fresh unless a pre hook added or changed a repository.
      if (distro.repositories(root) !== sources)
        await tree.run("package index refresh", distro.refreshCommand());
      await tree.run("package installation", distro.installCommand(args.packages));
    }
    await tree.run("user setup (user.sh)", ["/bin/sh", "/run/antidote/user.sh"], {
      ANTIDOTE_GROUPS: args.user.groups.join(" "),
    });
    if (args.files.length > 0) await tree.run("copying files", ["/bin/sh", "/run/antidote/files.sh"]);
    if (args.playbook) {
      log.progress(`${ctx.spec.image}: running playbook ${path.basename(args.playbook)}`);
      const playbook = stagePlaybook(ctx.files, args.playbook, path.join(ctx.work, "playbook"));
      await runPlaybook(tree, log, { image: ctx.spec.image, playbook, work: ctx.work });
    }
    if (hooks.install) await runHook(ctx, tree, hooks.install);
    for (const hook of hooks.post) await runHook(ctx, tree, hook);
  } finally {
    // Also after a failure: a retry must not download again what this attempt fetched.
    try {
      shareFiles(treeCache, packageCache, ".deb");
    } catch (err) {
      log.write(`# could not keep the downloaded packages: ${(err as Error).message}`);
    }
  }

  log.progress(`${ctx.spec.image}: cleaning up and packing`);
  await tree.run("clean-up (finalize.sh)", ["/bin/sh", "/run/antidote/finalize.sh"], {
    ANTIDOTE_LESSON_SERVICES: args.lessonServices.join(" "),
  });
  distro.cleanupTree(root);
  finishTree(root);

  const packages = await distro.listPackages(log, root);
  const manifest: RootfsManifest = { suite: args.suite, architecture: args.architecture, packages };
  writeJson(path.join(ctx.out, ROOTFS_MANIFEST), manifest);
  const info: RootfsImageInfo = {
    hostname: args.hostname,
    user: args.user.name,
    groups: args.user.groups,
    rootLabel: ROOT_LABEL,
    netNaming: NET_NAMING,
  };
  writeJson(path.join(ctx.out, ROOTFS_IMAGE_INFO), info);

  const { stdout } = await log.exec("du", ["--summarize", "--block-size=1K", "--apparent-size", root], {
    capture: true,
  });
  const tarball = path.join(ctx.out, ROOTFS_TARBALL);
  await timed(log, "packing", () => packTree(ctx, root, tarball));
  const outputs: Record<string, Json> = {
    packages: packages.length,
    installedSizeKiB: parseInt(stdout, 10),
    compressedSize: fs.statSync(tarball).size,
    suite: args.suite,
    hostname: args.hostname,
    user: args.user.name,
  };
  return { primary: ROOTFS_TARBALL, outputs };
}

/** A hook as staged: its display name and how to run it. */
interface StagedHook {
  name: string;
  command: string[];
}

/** Copies the author's hooks and files and the step's scripts into the stage directory. */
function stageInputs(ctx: StepContext<RootfsStepArgs>, stage: string) {
  const { args } = ctx;
  for (const name of ROOTFS_SCRIPTS) fs.copyFileSync(input(ctx, `rootfs/${name}`), path.join(stage, name));
  fs.mkdirSync(path.join(stage, "stage3"));
  for (const name of STAGE3_FILES)
    fs.copyFileSync(input(ctx, `stage3/${name}`), path.join(stage, "stage3", name));
  fs.writeFileSync(path.join(stage, "user.shadow"), `${args.user.name}:${args.user.passwordHash}\n`, {
    mode: 0o600,
  });

  fs.mkdirSync(path.join(stage, "hooks"));
  const stageHook = (role: string): StagedHook => {
    const name = path.basename(role).replace(/^\d+-/, "");
    const file = path.join(stage, "hooks", role.replace("/", "-"));
    fs.copyFileSync(input(ctx, role), file);
    fs.chmodSync(file, 0o755);
    const inTree = `/run/antidote/hooks/${path.basename(file)}`;
    // A script without a #! line runs with /bin/sh, as it would from a shell.
    const shebang = fs.readFileSync(file).subarray(0, 2).toString() === "#!";
    return { name, command: shebang ? [inTree] : ["/bin/sh", inTree] };
  };
  const hooks = {
    pre: args.hooks.pre.map(stageHook),
    install: args.hooks.install ? stageHook(args.hooks.install) : undefined,
    post: args.hooks.post.map(stageHook),
  };

  fs.mkdirSync(path.join(stage, "files"));
  const lines = ["#!/bin/sh", "set -eu"];
  args.files.forEach((file, i) => {
    fs.copyFileSync(input(ctx, file.role), path.join(stage, "files", String(i)));
    lines.push(
      `install -D -m ${file.mode} -o ${file.owner} -g ${file.group} /run/antidote/files/${i} ${shellQuote(file.path)}`,
    );
  });
  fs.writeFileSync(path.join(stage, "files.sh"), lines.join("\n") + "\n");
  return hooks;
}

async function runHook(ctx: StepContext<RootfsStepArgs>, tree: ImageTree, hook: StagedHook): Promise<void> {
  ctx.log.progress(`${ctx.spec.image}: running ${hook.name}`);
  await tree.run(hook.name, hook.command);
}

function input(ctx: StepContext<RootfsStepArgs>, role: string): string {
  const file = ctx.files[role];
  if (!file) throw new Error(`the step has no input file '${role}'`);
  return file;
}

/** What is written from the host once nothing runs in the tree any more. */
function finishTree(root: string): void {
  // The build's resolv.conf was the host's, laid over this one; the image names no server (no DNS at runtime). A
  // symlink (systemd-resolved, set up by a hook) is the author's choice and stays.
  const resolv = path.join(root, "etc/resolv.conf");
  if (!fs.lstatSync(resolv, { throwIfNoEntry: false })?.isSymbolicLink()) {
    fs.rmSync(resolv, { force: true });
    fs.writeFileSync(resolv, "# Lab VMs have no name server; stage 3 adds one when a lesson needs it.\n", {
      mode: 0o644,
    });
  }
  // Device nodes the bootstrap made: the booted system mounts devtmpfs here.
  for (const entry of fs.readdirSync(path.join(root, "dev"))) {
    fs.rmSync(path.join(root, "dev", entry), { recursive: true, force: true });
  }
}

/** A byte-for-byte reproducible tarball: sorted names, numeric owners, clamped times, no atime/ctime or PIDs. */
async function packTree(ctx: StepContext<RootfsStepArgs>, root: string, tarball: string): Promise<void> {
  await ctx.log.exec("tar", [
    "--create",
    `--file=${tarball}`,
    `--use-compress-program=${ZSTD}`,
    `--directory=${root}`,
    "--sort=name",
    "--format=pax",
    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
    "--numeric-owner",
    `--mtime=@${ctx.args.sourceDateEpoch}`,
    "--clamp-mtime",
    "--xattrs",
    "--xattrs-include=security.capability",
    "--no-acls",
    "--no-selinux",
    ".",
  ]);
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + "\n");
}
