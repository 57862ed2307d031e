import * as fs from "fs";
import * as path from "path";
import { Json } from "../keys";
import { Artifact, ArtifactStore } from "../store/store";
import { DockerImageInfo, inspectImage } from "./docker";
import { StepLog } from "./log";
import { ROOTFS_TARBALL } from "./rootfs";
import { argsObject, StepArgsError, StepContext, StepDefinition } from "./step";

/** The launcher's scripts: input role → where they go in the image. */
export const LAUNCHER_SCRIPTS: Record<string, string> = {
  "launcher/launch.sh": "usr/local/bin/antidote-launch",
  "launcher/health.sh": "usr/local/bin/antidote-health",
};

/** Directories every lab image relies on: the disk's and the lesson directory's mount point. */
const LAUNCHER_DIRS = ["disk", "antidote"];

/** The primary file of a launcher artifact. */
export const LAUNCHER_RECORD = "launcher.json";

/** Role → path of the launcher's scripts, for the component's (and tests') `files`. */
export function launcherScriptFiles(): Record<string, string> {
  const dir = path.join(__dirname, "..", "scripts");
  return Object.fromEntries(Object.keys(LAUNCHER_SCRIPTS).map((role) => [role, path.join(dir, role)]));
}

export interface LauncherStepArgs {
  /** Local repository the image is tagged in; the tag is the step's key. */
  repository: string;
}

/** `launcher.json`: the base image as dockerd holds it. */
export interface LauncherRecord extends DockerImageInfo {
  /** `<repository>:<key>`: what lab images build `FROM`. */
  ref: string;
}

/**
 * The launcher base image: the launcher Rootfs (QEMU, iproute2, tini, sshpass) plus the launch and health scripts,
 * imported into dockerd as one `FROM scratch` layer. Every lab image is this layer plus its own (disk and metadata),
 * so a registry stores the base once.
 */
export const launcherStep: StepDefinition<LauncherStepArgs> = {
  kind: "launcher",
  version: 1,
  parseArgs(raw: Json): LauncherStepArgs {
    const args = argsObject(raw);
    const repository = args.repository;
    if (typeof repository !== "string" || !/^[a-z0-9]+([._/-][a-z0-9]+)*$/.test(repository)) {
      throw new StepArgsError("repository", "a Docker repository name (lower case)", repository);
    }
    return { repository };
  },
  async run(ctx: StepContext<LauncherStepArgs>) {
    const rootfs = ctx.parents.rootfs;
    if (!rootfs) throw new Error("the launcher needs a 'rootfs' parent");
    const ref = `${ctx.args.repository}:${ctx.spec.key}`;
    const scripts = Object.fromEntries(
      Object.keys(LAUNCHER_SCRIPTS).map((role) => {
        const file = ctx.files[role];
        if (!file) throw new Error(`the step needs its '${role}' input file`);
        return [role, fs.readFileSync(file)];
      }),
    );
    const image = await importLauncher(ctx.log, rootfs, scripts, ref, ctx.work);
    const record: LauncherRecord = { ref, ...image };
    fs.writeFileSync(path.join(ctx.out, LAUNCHER_RECORD), JSON.stringify(record, null, 2) + "\n");
    ctx.log.progress(`launcher: ${ref.slice(0, 40)}… ${(image.size / 1e6).toFixed(0)} MB, one layer`);
    return { primary: LAUNCHER_RECORD, outputs: { ...record } };
  },
};

/** Unpacks the rootfs tarball (dockerd 20.10 cannot import zstd), adds the scripts and imports it as `ref`. */
async function importLauncher(
  log: StepLog,
  rootfs: Artifact,
  scripts: Record<string, Buffer>,
  ref: string,
  work: string,
): Promise<DockerImageInfo> {
  const tar = path.join(work, "launcher.tar");
  const stage = path.join(work, "launcher-stage");
  await log.exec("zstd", ["-d", "-q", "-f", "-o", tar, path.join(rootfs.dir, ROOTFS_TARBALL)]);
  for (const [role, target] of Object.entries(LAUNCHER_SCRIPTS)) {
    fs.mkdirSync(path.dirname(path.join(stage, target)), { recursive: true });
    fs.writeFileSync(path.join(stage, target), scripts[role]);
    fs.chmodSync(path.join(stage, target), 0o755);
  }
  for (const dir of LAUNCHER_DIRS) fs.mkdirSync(path.join(stage, dir), { recursive: true });
  // Fixed owner, modes and times: the same inputs give the same layer digest on any machine.
  const epoch = String((rootfs.meta.inputs.args as { sourceDateEpoch?: number }).sourceDateEpoch ?? 0);
  await log.exec(
    "tar",
    [
      "--append",
      `--file=${tar}`,
      `--directory=${stage}`,
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      `--mtime=@${epoch}`,
      "--mode=go-w",
      "--no-recursion",
      ...LAUNCHER_DIRS,
      ...Object.values(LAUNCHER_SCRIPTS),
    ],
    { env: { LC_ALL: "C" } },
  );
  await log.exec("docker", ["import", "--message", `antidote launcher from rootfs ${rootfs.key}`, tar, ref], {
    capture: true,
  });
  fs.rmSync(tar, { force: true });
  const image = await inspectImage(ref);
  if (!image) throw new Error(`dockerd does not show the image it just imported as ${ref}`);
  return image;
}

/**
 * Makes sure dockerd holds the launcher image an artifact recorded. dockerd is where images live, not the store: on a
 * new machine (or after `docker image prune`) the artifact is there and the image is not. It is imported again from
 * the rootfs parent and the scripts the store kept, and must come out as the very same layer.
 */
export async function ensureLauncherImage(
  launcher: Artifact,
  store: ArtifactStore,
  log: StepLog,
): Promise<LauncherRecord> {
  const record = JSON.parse(
    fs.readFileSync(path.join(launcher.dir, LAUNCHER_RECORD), "utf8"),
  ) as LauncherRecord;
  const present = await inspectImage(record.ref);
  if (present && present.layers.join() === record.layers.join()) return record;
  log.progress(`launcher: dockerd has no ${record.ref}: importing it again from the store`);
  const rootfsKey = launcher.meta.inputs.parents.rootfs;
  const rootfs = rootfsKey ? await store.get(rootfsKey) : undefined;
  if (!rootfs) {
    throw new Error(
      `dockerd has no launcher image ${record.ref} and its rootfs ${rootfsKey} is no longer in the store; ` +
        `remove ${launcher.dir} to build it anew`,
    );
  }
  const scripts: Record<string, Buffer> = {};
  for (const role of Object.keys(LAUNCHER_SCRIPTS)) {
    const blob = await store.readBlob(launcher.meta.inputs.files[role]);
    if (!blob) throw new Error(`the store no longer holds the launcher's ${role}; remove ${launcher.dir}`);
    scripts[role] = blob;
  }
  const { dir: work, remove: removeWork } = store.scratchDir("antidote-launcher-work");
  try {
    const image = await importLauncher(log, rootfs, scripts, record.ref, work);
    if (image.layers.join() !== record.layers.join()) {
      throw new Error(
        `re-imported launcher ${record.ref} has layer ${image.layers.join()}, the artifact recorded ` +
          `${record.layers.join()}`,
      );
    }
    return { ...record, ...image };
  } finally {
    removeWork();
  }
}
