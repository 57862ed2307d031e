import * as fs from "fs";
import * as path from "path";
import { capture } from "../exec";
import { Json } from "../keys";
import { ImageMetadata } from "../metadata/schema";
import { DockerImageInfo, inspectImage } from "./docker";
import { Artifact, ArtifactStore } from "../store/store";
import { ensureLauncherImage, LauncherRecord } from "./launcher";
import { StepLog } from "./log";
import { argsObject, StepArgsError, StepContext, StepDefinition } from "./step";

/** Where the disk is in every lab image; the launch script's default `ANTIDOTE_DISK`. */
export const CONTAINER_DISK_PATH = "/disk/disk.qcow2";

/** Where the disk's kernel is in a lab image that boots it directly (`ANTIDOTE_KERNEL`). */
export const CONTAINER_KERNEL_PATH = "/disk/vmlinuz";

/**
 * Where a lab image keeps the snapshot of its booted VM (the launcher's `ANTIDOTE_SNAPSHOT` default), and the files the
 * launcher's `--snapshot` writes there: the VM's memory and device state, its disk as the boot left it (an overlay of
 * {@link CONTAINER_DISK_PATH}), and what a start checks before it restores them.
 */
export const CONTAINER_SNAPSHOT_DIR = "/disk/snapshot";
const SNAPSHOT_FILES = ["state", "disk.qcow2", "snapshot.env"] as const;

/** TCP port of the VM's serial console in every lab container (vrnetlab's convention: `telnet <node> 5000`). */
export const CONSOLE_PORT = 5000;

/** The primary file of a container artifact. */
export const CONTAINER_RECORD = "image.json";

export interface ContainerStepArgs {
  /** Local repository the image is tagged in (`antidote-images/<image>`); the tag is the step's key. */
  repository: string;
  /** The image's metadata: labels, forwarded ports, NIC count, memory and CPU defaults. */
  metadata: ImageMetadata;
  /** Build without a passed boot test (the component allows it only when asked to). */
  untested: boolean;
  /** Docker HEALTHCHECK start period: how long a TCG boot may take before failures count. */
  healthStartSeconds: number;
  /** Boot the VM once at build time and keep its snapshot in the image, for starts that restore it (needs a kernel). */
  snapshot: boolean;
}

/** `image.json`: the lab image as dockerd holds it. */
export interface ContainerRecord extends DockerImageInfo {
  /** `<repository>:<key>`. */
  ref: string;
  /** The launcher image it is built on. */
  base: string;
  /** Layers of its own (the disk's), on top of the launcher's. */
  ownLayers: string[];
  diskSha256: string;
}

/**
 * A lab image: the launcher base plus one layer holding the qcow2 disk, with the image's metadata as OCI labels and
 * launch-script defaults. It needs a passed boot test (its artifact exists only when the test passed).
 */
export const containerStep: StepDefinition<ContainerStepArgs> = {
  kind: "container",
  // 5: the snapshot of the booted VM; 6: the health check every 2 s.
  version: 6,
  parseArgs(raw: Json): ContainerStepArgs {
    const args = argsObject(raw);
    const { repository, metadata, untested, healthStartSeconds, snapshot } = args;
    if (typeof repository !== "string" || !/^[a-z0-9]+([._/-][a-z0-9]+)*$/.test(repository)) {
      throw new StepArgsError("repository", "a Docker repository name (lower case)", repository);
    }
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      throw new StepArgsError("metadata", "the image's metadata", metadata);
    }
    const meta = metadata as unknown as ImageMetadata;
    if (!Array.isArray(meta.ports) || !Array.isArray(meta.interfaces) || typeof meta.name !== "string") {
      throw new StepArgsError("metadata", "validated metadata (name, ports, interfaces…)", metadata);
    }
    if (!sshPort(meta)) {
      throw new StepArgsError(
        "metadata.ports",
        "port 22/tcp (the health check logs in over SSH)",
        meta.ports,
      );
    }
    if (meta.ports.some((p) => p.port === CONSOLE_PORT && (p.protocol ?? "tcp") === "tcp")) {
      throw new StepArgsError(
        "metadata.ports",
        `no port ${CONSOLE_PORT}/tcp: the container serves the VM's serial console there`,
        meta.ports,
      );
    }
    if (typeof untested !== "boolean") throw new StepArgsError("untested", "true or false", untested);
    if (
      typeof healthStartSeconds !== "number" ||
      !Number.isInteger(healthStartSeconds) ||
      healthStartSeconds < 1
    ) {
      throw new StepArgsError("healthStartSeconds", "a positive whole number", healthStartSeconds);
    }
    if (typeof snapshot !== "boolean") throw new StepArgsError("snapshot", "true or false", snapshot);
    return { repository, metadata: meta, untested, healthStartSeconds, snapshot };
  },
  run: buildContainer,
  // The docker provider's Tag and push need the image in dockerd, not only in the store.
  restore: async (artifact, store) => {
    await ensureContainerImage(store, artifact.key);
  },
};

async function buildContainer(ctx: StepContext<ContainerStepArgs>) {
  const { disk, launcher, bootTest, kernel } = ctx.parents;
  if (!disk || !launcher) throw new Error("a container needs 'disk' and 'launcher' parents");
  const kernelCmdline = kernel ? directBootCmdline(disk, kernel) : undefined;
  if (ctx.args.snapshot && !kernel) {
    throw new Error("a snapshot needs the disk's kernel (a 'kernel' parent): only a direct boot is restored");
  }
  if (!ctx.args.untested) {
    if (!bootTest) throw new Error("no boot test: an untested disk is not published (untested: false)");
    if (bootTest.meta.outputs.passed !== true || bootTest.meta.inputs.parents.disk !== disk.key) {
      throw new Error(`boot test ${bootTest.key} did not pass on disk ${disk.key}`);
    }
  }
  const base = await ensureLauncherImage(launcher, ctx.store, ctx.log);
  const ref = `${ctx.args.repository}:${ctx.spec.key}`;
  const diskFile = disk.meta.primary;
  const diskSha256 = disk.meta.files[diskFile].sha256;
  const dockerfile = containerDockerfile({
    base: base.ref,
    metadata: ctx.args.metadata,
    key: ctx.spec.key,
    diskSha256,
    bootTest: bootTest?.key,
    healthStartSeconds: ctx.args.healthStartSeconds,
    kernelCmdline,
  });
  fs.writeFileSync(path.join(ctx.out, "Dockerfile"), dockerfile);
  const env = containerEnv(ctx.args.metadata, kernelCmdline);
  ctx.log.progress(`${ctx.spec.image}: docker build ${ref.slice(0, 40)}…`);
  await buildLabImage(ctx.log, ctx.store, path.join(ctx.out, "Dockerfile"), {
    disk: path.join(disk.dir, diskFile),
    kernel: kernel && path.join(kernel.dir, kernel.meta.primary),
    ref,
    snapshot: ctx.args.snapshot
      ? { make: { launcher: base.ref, env, image: ctx.spec.image }, dir: path.join(ctx.out, "snapshot") }
      : undefined,
  });
  const image = await inspectImage(ref);
  if (!image) throw new Error(`dockerd does not show the image it just built as ${ref}`);
  const record = containerRecord(ref, base, image, diskSha256);
  fs.writeFileSync(path.join(ctx.out, CONTAINER_RECORD), JSON.stringify(record, null, 2) + "\n");
  ctx.log.progress(
    `${ctx.spec.image}: image ${(image.size / 1e6).toFixed(0)} MB, own layer(s) ${record.ownLayers.length} ` +
      `on launcher ${base.layers.map((l) => l.slice(7, 19)).join(",")}`,
  );
  return { primary: CONTAINER_RECORD, outputs: { ...record } as Record<string, Json> };
}

/**
 * Makes sure dockerd holds the lab image a container artifact recorded. dockerd is where images live, not the store:
 * on a new machine (or after a prune) the artifact is there and the image is not. It is built again from the
 * artifact's Dockerfile and its disk and launcher parents, and must come out with the very same layers.
 */
export async function ensureContainerImage(store: ArtifactStore, key: string): Promise<ContainerRecord> {
  const artifact = await store.get(key);
  if (!artifact || artifact.meta.kind !== "container") {
    throw new Error(`no container artifact ${key} in the store ${store.location}`);
  }
  const record = JSON.parse(
    fs.readFileSync(path.join(artifact.dir, CONTAINER_RECORD), "utf8"),
  ) as ContainerRecord;
  const present = await inspectImage(record.ref);
  if (present && present.layers.join() === record.layers.join()) return record;
  const parents = artifact.meta.inputs.parents;
  const [disk, launcher, kernel] = await Promise.all([
    store.get(parents.disk),
    store.get(parents.launcher),
    parents.kernel ? store.get(parents.kernel) : undefined,
  ]);
  if (!disk || !launcher || (parents.kernel && !kernel)) {
    throw new Error(
      `dockerd has no ${record.ref} and the store no longer holds its disk, kernel or launcher; remove ` +
        `${artifact.dir} to build it anew`,
    );
  }
  const log = new StepLog(store.logPath(key), new AbortController().signal, () => {});
  log.progress(`${artifact.meta.image}: dockerd has no ${record.ref}: building it again from the store`);
  await ensureLauncherImage(launcher, store, log);
  const snapshotDir = path.join(artifact.dir, "snapshot");
  await buildLabImage(log, store, path.join(artifact.dir, "Dockerfile"), {
    disk: path.join(disk.dir, disk.meta.primary),
    kernel: kernel && path.join(kernel.dir, kernel.meta.primary),
    ref: record.ref,
    snapshot: fs.existsSync(snapshotDir) ? { dir: snapshotDir } : undefined,
  });
  const image = await inspectImage(record.ref);
  if (!image || image.layers.join() !== record.layers.join()) {
    throw new Error(
      `${record.ref} built again has layers ${image?.layers.join(", ")}, the artifact recorded ` +
        `${record.layers.join(", ")}; remove ${artifact.dir} to build it anew`,
    );
  }
  return { ...record, id: image.id };
}

/** The time every entry of the disk layer carries (2000-01-01): the layer's digest then depends on the disk alone. */
const DISK_LAYER_MTIME = 946684800;

/**
 * The kernel command line of a direct boot: the one the disk's GRUB passes, recorded by the disk step. The kernel
 * must be the disk's own (the one installed in it), so that both boots run the same kernel.
 */
function directBootCmdline(disk: Artifact, kernel: Artifact): string {
  if (disk.meta.inputs.parents.kernel !== kernel.key) {
    throw new Error(
      `kernel ${kernel.key} is not the one disk ${disk.key} was built with ` +
        `(${disk.meta.inputs.parents.kernel ?? "an imported disk has none"}): a direct boot needs the disk's own kernel`,
    );
  }
  const cmdline = disk.meta.outputs.kernelCmdline;
  if (typeof cmdline !== "string" || !cmdline) {
    throw new Error(`disk ${disk.key} records no kernel command line (kernelCmdline): build the disk anew`);
  }
  return cmdline;
}

/** The snapshot of a lab image: made now (by the launcher, from the disk and kernel in the context), or kept. */
interface SnapshotFiles {
  /** Make it with the launcher image `launcher` and the lab image's environment, then keep it in `dir`. */
  make?: { launcher: string; env: [string, string][]; image: string };
  /** Where the snapshot's files are kept (the container artifact's `snapshot/`). */
  dir: string;
}

/**
 * `docker build` with a context of just `disk/disk.qcow2` (and `disk/vmlinuz` for a direct boot, and `disk/snapshot/`
 * when the image has a snapshot), copied (reflinked where the filesystem can) and dated {@link DISK_LAYER_MTIME},
 * directories included. The Dockerfile's `COPY . /` then writes a layer whose bytes are the same at every build of the
 * same files: a `COPY file /disk/…` would date the `/disk` it creates with the build's own clock. A snapshot is not the
 * same twice (a VM's memory never is), so it is made once and kept in the artifact, which a rebuild copies from.
 */
async function buildLabImage(
  log: StepLog,
  store: ArtifactStore,
  dockerfile: string,
  files: { disk: string; kernel?: string; ref: string; snapshot?: SnapshotFiles },
): Promise<void> {
  const { dir: context, remove: removeContext } = store.scratchDir("antidote-container-context");
  try {
    const directory = path.join(context, path.dirname(CONTAINER_DISK_PATH));
    fs.mkdirSync(directory);
    const entries = [directory];
    const copies: [string, string][] = [[files.disk, CONTAINER_DISK_PATH]];
    if (files.kernel) copies.push([files.kernel, CONTAINER_KERNEL_PATH]);
    for (const [from, to] of copies) {
      const inContext = path.join(context, to);
      fs.copyFileSync(from, inContext, fs.constants.COPYFILE_FICLONE);
      fs.chmodSync(inContext, 0o644);
      entries.push(inContext);
    }
    if (files.snapshot) {
      // Made here, then kept in the artifact; or copied here from the artifact.
      const { make, dir: kept } = files.snapshot;
      const inContext = path.join(context, CONTAINER_SNAPSHOT_DIR);
      if (make) {
        await makeSnapshot(log, context, make);
        fs.mkdirSync(kept, { recursive: true });
      } else {
        fs.mkdirSync(inContext);
      }
      for (const name of SNAPSHOT_FILES) {
        const [from, to] = make
          ? [path.join(inContext, name), path.join(kept, name)]
          : [path.join(kept, name), path.join(inContext, name)];
        fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE);
        fs.chmodSync(path.join(inContext, name), 0o644);
        entries.push(path.join(inContext, name));
      }
      fs.chmodSync(inContext, 0o755);
      entries.push(inContext);
    }
    fs.chmodSync(directory, 0o755);
    for (const entry of entries) fs.utimesSync(entry, DISK_LAYER_MTIME, DISK_LAYER_MTIME);
    await log.exec("docker", ["build", "--quiet", "--file", dockerfile, "--tag", files.ref, context], {
      env: { DOCKER_BUILDKIT: "0" },
      capture: true,
    });
  } finally {
    removeContext();
  }
}

/**
 * How long the snapshot's boot may take: a cold TCG boot to antidote-resume takes 10–20 s on a loaded 2-core machine,
 * so this is room, not an estimate.
 */
const SNAPSHOT_TIMEOUT_SECONDS = 300;

/**
 * Boots the VM in the launcher, as a lab container would, up to antidote-resume, and saves it in the context's
 * `disk/snapshot/` (`antidote-launch --snapshot`). The container has no network and a fixed name: a build that died
 * leaves one behind, which the next removes. A failed attempt is tried once more: a cold microvm boot under TCG has
 * been seen to stop for good at an early step, rarely (docs/container.md); a fault of the image fails both.
 */
async function makeSnapshot(
  log: StepLog,
  context: string,
  make: { launcher: string; env: [string, string][]; image: string },
): Promise<void> {
  const name = `antidote-snapshot-${make.image}`;
  const run = (attempt: number) => {
    log.progress(
      `${make.image}: snapshot: booting the VM to antidote-resume and saving it` +
        (attempt > 1 ? ` (attempt ${attempt})` : ""),
    );
    return log.exec(
      "docker",
      [
        "run",
        "--rm",
        "--name",
        name,
        "--network",
        "none",
        "--volume",
        `${path.join(context, path.dirname(CONTAINER_DISK_PATH))}:${path.dirname(CONTAINER_DISK_PATH)}`,
        ...make.env.flatMap(([key, value]) => ["--env", `${key}=${value}`]),
        "--env",
        `ANTIDOTE_SNAPSHOT_TIMEOUT=${SNAPSHOT_TIMEOUT_SECONDS}`,
        make.launcher,
        "/usr/bin/tini",
        "--",
        "/usr/local/bin/antidote-launch",
        "--snapshot",
        CONTAINER_SNAPSHOT_DIR,
      ],
      { timeoutMs: (SNAPSHOT_TIMEOUT_SECONDS + 120) * 1000 },
    );
  };
  // Not through the log, which runs nothing once the build is stopped: a stopped `docker run` leaves its container.
  const remove = () => capture("docker", ["rm", "--force", name]);
  try {
    await remove();
    try {
      await run(1);
    } catch (err) {
      log.progress(
        `${make.image}: snapshot: the first attempt failed (${(err as Error).message.split("\n")[0]})`,
      );
      await remove();
      await run(2);
    }
  } finally {
    await remove();
  }
}

function containerRecord(
  ref: string,
  base: LauncherRecord,
  image: DockerImageInfo,
  diskSha256: string,
): ContainerRecord {
  const shared = base.layers.every((layer, i) => image.layers[i] === layer);
  if (!shared) {
    throw new Error(`${ref} does not start with the launcher's layers (${base.layers.join(", ")})`);
  }
  return { ref, ...image, base: base.ref, ownLayers: image.layers.slice(base.layers.length), diskSha256 };
}

/** The port the health check logs in on: 22/tcp. */
export function sshPort(metadata: ImageMetadata): number | undefined {
  return metadata.ports.some((p) => p.port === 22 && (p.protocol ?? "tcp") === "tcp") ? 22 : undefined;
}

export interface DockerfileInputs {
  /** The launcher image reference. */
  base: string;
  metadata: ImageMetadata;
  key: string;
  diskSha256: string;
  /** Key of the passed boot test; none for an untested build. */
  bootTest?: string;
  healthStartSeconds: number;
  /** The disk's kernel command line when the image holds its kernel for a direct boot; none boots by firmware. */
  kernelCmdline?: string;
}

/**
 * The lab image's Dockerfile: one COPY (the disk, the only layer of its own) and configuration. Labels follow the OCI
 * annotation keys, plus `dev.antidote.*` for what a lab platform needs to wire the image (JSON values).
 */
export function containerDockerfile(inputs: DockerfileInputs): string {
  const m = inputs.metadata;
  const quote = (value: string) => JSON.stringify(value.replace(/\s+/g, " ").trim());
  const json = (value: unknown) => quote(JSON.stringify(value));
  const labels: [string, string][] = [
    ["org.opencontainers.image.title", quote(m.name)],
    ["org.opencontainers.image.description", quote(m.description)],
    ["org.opencontainers.image.version", quote(inputs.key)],
    ["org.opencontainers.image.base.name", quote(inputs.base)],
    ...(m.maintainer ? [["org.opencontainers.image.authors", quote(m.maintainer)] as [string, string]] : []),
    ["dev.antidote.image", quote(m.name)],
    ["dev.antidote.capabilities", json(m.capabilities)],
    ["dev.antidote.ports", json(m.ports)],
    ["dev.antidote.interfaces", json(m.interfaces)],
    ["dev.antidote.credentials", json(m.credentials)],
    ["dev.antidote.resources", json(m.resources)],
    ["dev.antidote.services", json(m.services)],
    ["dev.antidote.disk.sha256", quote(inputs.diskSha256)],
    ["dev.antidote.boot-test", quote(inputs.bootTest ?? "untested")],
  ];
  return [
    `FROM ${inputs.base}`,
    // The context holds only disk/ (see buildLabImage).
    "COPY . /",
    `LABEL ${labels.map(([k, v]) => `${k}=${v}`).join(" \\\n      ")}`,
    `ENV ${containerEnv(m, inputs.kernelCmdline)
      .map(([k, v]) => `${k}=${quote(v)}`)
      .join(" \\\n    ")}`,
    `EXPOSE ${[...m.ports.map((p) => `${p.port}/${p.protocol ?? "tcp"}`), `${CONSOLE_PORT}/tcp`].join(" ")}`,
    // The check only reads the readiness the launcher records (antidote-health), but each run is a `docker exec`:
    // about 0.12 s of host CPU on the 2-core machine, so every second it cost an idle container an eighth of a core
    // (docs/container.md). Every 2 s the container turns healthy within two seconds of the VM's SSH answering
    // (dockerd 20.10 has no --start-interval, which would allow a fast check at start alone).
    `HEALTHCHECK --interval=2s --timeout=10s --start-period=${inputs.healthStartSeconds}s --retries=3 ` +
      `CMD ["/usr/local/bin/antidote-health"]`,
    "STOPSIGNAL SIGTERM",
    `ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/antidote-launch"]`,
    "",
  ].join("\n");
}

/**
 * The lab image's launch-script defaults, from its metadata (`ENV` in the image; the environment its snapshot is
 * made in, so that the snapshot's VM is the one a start boots).
 */
export function containerEnv(m: ImageMetadata, kernelCmdline?: string): [string, string][] {
  const env: [string, string][] = [
    ["ANTIDOTE_DISK", CONTAINER_DISK_PATH],
    ["ANTIDOTE_NICS", String(m.interfaces.length)],
    ["ANTIDOTE_PORTS", m.ports.map((p) => `${p.protocol ?? "tcp"}:${p.port}`).join(" ")],
    ["ANTIDOTE_MEMORY_MIB", String(m.resources.memoryMiB)],
    ["ANTIDOTE_CPUS", String(m.resources.cpus)],
    ["ANTIDOTE_CONSOLE_PORT", String(CONSOLE_PORT)],
    ["ANTIDOTE_SSH_PORT", "22"],
    // The lab's well-known login, also in the labels: the health check logs in with it.
    ["ANTIDOTE_SSH_USER", m.credentials.username],
    ["ANTIDOTE_SSH_PASSWORD", m.credentials.password],
    ...(kernelCmdline
      ? [
          ["ANTIDOTE_KERNEL", CONTAINER_KERNEL_PATH] as [string, string],
          ["ANTIDOTE_KERNEL_CMDLINE", kernelCmdline] as [string, string],
        ]
      : []),
  ];
  // One line each, as the Dockerfile's ENV holds them.
  return env.map(([key, value]) => [key, value.replace(/\s+/g, " ").trim()]);
}
