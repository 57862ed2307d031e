import * as fs from "fs";
import * as path from "path";
import { Json, sha256File } from "../keys";
import { Artifact } from "../store/store";
import { earlyConfig, GRUB_LIB, grubConfig, installBiosBootCode, mkimageArgs } from "../vm/grub";
import { derivedUuid, diskLayout, MIB, partition, SECTOR, sfdiskScript } from "../vm/layout";
import { convertToCompressedQcow2, diskImageInfo } from "../vm/qemu-img";
import { argsObject, StepArgsError, StepContext, StepDefinition } from "./step";

export interface DiskArgs {
  /** Virtual size of the disk in bytes, a whole number of MiB. */
  sizeBytes: number;
  /** Kernel parameters appended to the disk's own (root, console). */
  kernelCmdline: string[];
  /** Also make the disk bootable by UEFI firmware (an EFI system partition with GRUB). */
  uefi: boolean;
  /** Seconds GRUB waits before booting. */
  grubTimeoutSeconds: number;
}

/** What the rootfs step records in its artifact's `image.json`. */
export interface ImageInfo {
  hostname?: string;
  user?: string;
  groups?: string[];
  rootLabel?: string;
  netNaming?: string;
}

export const DISK_FILE = "disk.qcow2";
export const DEFAULT_ROOT_LABEL = "antidote-root";
/** Kernel parameters every disk gets after root=: the serial console last, so it is /dev/console (systemd's output). */
export const CONSOLE_PARAMS = ["console=tty0", "console=ttyS0,115200"];

/** A kernel parameter: no spaces or quotes, so the command line stays one GRUB line that means what it says. */
const KERNEL_PARAM = /^[A-Za-z0-9_.,:=/+@-]+$/;

/**
 * Builds a bootable, compressed qcow2 from a `rootfs` and a `kernel` artifact without mounting anything or using a
 * loop device: the tree is extracted in the work directory, the kernel installed into it, `mkfs.ext4 -d` writes the
 * root filesystem straight into its partition of a sparse raw image, GRUB's BIOS boot code is written into the MBR
 * and BIOS boot partition, its EFI image into an EFI system partition built with mtools.
 */
export const diskStep: StepDefinition<DiskArgs> = {
  kind: "disk",
  // 3: GRUB's menu entry named after the rootfs's host name (in the key), no longer after the image (not in it).
  version: 3,
  parseArgs(raw: Json): DiskArgs {
    const args = argsObject(raw);
    const sizeBytes = args.sizeBytes;
    if (typeof sizeBytes !== "number" || !Number.isInteger(sizeBytes / MIB) || sizeBytes < 128 * MIB) {
      throw new StepArgsError("sizeBytes", "a whole number of MiB, at least 128 MiB", sizeBytes);
    }
    const kernelCmdline = args.kernelCmdline;
    if (!Array.isArray(kernelCmdline)) {
      throw new StepArgsError("kernelCmdline", "a list of kernel parameters", kernelCmdline);
    }
    kernelCmdline.forEach((p, i) => {
      if (typeof p !== "string" || !KERNEL_PARAM.test(p)) {
        throw new StepArgsError(`kernelCmdline[${i}]`, "a kernel parameter without spaces or quotes", p);
      }
    });
    const uefi = args.uefi;
    if (typeof uefi !== "boolean") throw new StepArgsError("uefi", "true or false", uefi);
    const grubTimeoutSeconds = args.grubTimeoutSeconds;
    if (
      typeof grubTimeoutSeconds !== "number" ||
      !Number.isInteger(grubTimeoutSeconds) ||
      grubTimeoutSeconds < 0
    ) {
      throw new StepArgsError("grubTimeoutSeconds", "a whole number of seconds", grubTimeoutSeconds);
    }
    return { sizeBytes, kernelCmdline: kernelCmdline as string[], uefi, grubTimeoutSeconds };
  },
  run: buildDisk,
};

async function buildDisk(ctx: StepContext<DiskArgs>) {
  const { rootfs, kernel } = ctx.parents;
  if (!rootfs || !kernel) throw new Error("a disk needs a 'rootfs' and a 'kernel' parent");
  const started = Date.now();
  const phase = (what: string) =>
    ctx.log.progress(`${ctx.spec.image}: disk: ${what} (+${Date.now() - started} ms)`);
  const image = readImageInfo(rootfs);
  const layout = diskLayout(ctx.spec.key, ctx.args.sizeBytes, ctx.args.uefi);
  const root = partition(layout, "root")!;
  const rootFsUuid = derivedFsUuid(ctx.spec.key);

  phase("extracting the root filesystem");
  const tree = path.join(ctx.work, "tree");
  fs.mkdirSync(tree);
  await ctx.log.exec("tar", [
    "--zstd",
    "-xpf",
    path.join(rootfs.dir, rootfs.meta.primary),
    "-C",
    tree,
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
  ]);
  const epoch = sourceDateEpoch(tree);

  phase("installing the kernel");
  const kernelRelease = await installKernel(ctx, kernel, tree);
  const cmdline = kernelCommandLine(root.uuid, image, ctx.args.kernelCmdline);
  installGrubFiles(tree, ctx.args.uefi);
  fs.writeFileSync(
    path.join(tree, "boot", "grub", "grub.cfg"),
    grubConfig({
      kernel: `/boot/vmlinuz-${kernelRelease}`,
      cmdline,
      timeoutSeconds: ctx.args.grubTimeoutSeconds,
      // The root filesystem's host name, not the image's name: that is not in the key, and two images may share it.
      title: `${image.hostname ?? "Linux"} (${kernelRelease})`,
    }),
  );
  // Files the build touched get the tree's own date, so the filesystem does not record when it was built.
  await ctx.log.exec("find", [
    tree,
    "-newermt",
    `@${epoch}`,
    "-exec",
    "touch",
    "--no-dereference",
    `--date=@${epoch}`,
    "{}",
    "+",
  ]);
  await checkTreeFits(ctx, tree, root.size * SECTOR);

  phase("partitioning");
  const raw = path.join(ctx.work, "disk.raw");
  fs.closeSync(fs.openSync(raw, "w"));
  fs.truncateSync(raw, ctx.args.sizeBytes);
  await ctx.log.exec("sfdisk", ["--no-reread", "--no-tell-kernel", raw], {
    input: sfdiskScript(layout, raw),
  });

  phase("writing the root filesystem");
  const reproducible = { SOURCE_DATE_EPOCH: String(epoch), E2FSPROGS_FAKE_TIME: String(epoch) };
  await ctx.log.exec(
    "mkfs.ext4",
    [
      "-F",
      "-q",
      "-L",
      image.rootLabel ?? DEFAULT_ROOT_LABEL,
      "-U",
      rootFsUuid,
      "-E",
      `offset=${root.start * SECTOR},hash_seed=${derivedHashSeed(ctx.spec.key)},root_owner=0:0`,
      "-d",
      tree,
      raw,
      `${(root.size * SECTOR) / 1024}k`,
    ],
    { env: reproducible },
  );

  await pinInodeTimes(ctx, tree, `${raw}?offset=${root.start * SECTOR}`, epoch, reproducible);

  phase("installing GRUB");
  const early = path.join(ctx.work, "early.cfg");
  fs.writeFileSync(early, earlyConfig(rootFsUuid));
  const coreImg = path.join(ctx.work, "core.img");
  await ctx.log.exec("grub-mkimage", mkimageArgs("i386-pc", coreImg, early), { env: reproducible });
  const bios = partition(layout, "bios")!;
  if (fs.statSync(coreImg).size > bios.size * SECTOR) {
    throw new Error(`GRUB's core.img (${fs.statSync(coreImg).size} bytes) does not fit its partition`);
  }
  installBiosBootCode(
    raw,
    fs.readFileSync(path.join(GRUB_LIB, "i386-pc", "boot.img")),
    fs.readFileSync(coreImg),
    bios.start,
  );
  const esp = partition(layout, "esp");
  if (esp) await writeEsp(ctx, raw, esp.start, esp.size, early, reproducible);

  phase("compressing");
  const output = path.join(ctx.out, DISK_FILE);
  await convertToCompressedQcow2(ctx.log, raw, "raw", output);
  const info = await diskImageInfo(ctx.log, output, "qcow2");
  const digest = await sha256File(output);
  phase(`done: ${(info.sizeOnDisk / MIB).toFixed(1)} MiB on disk`);
  return {
    primary: DISK_FILE,
    outputs: {
      sha256: digest,
      virtualSize: info.virtualSize,
      sizeOnDisk: info.sizeOnDisk,
      diskId: layout.diskId,
      partitions: layout.partitions.map((p) => ({ ...p })),
      rootPartitionUuid: root.uuid,
      rootFilesystemUuid: rootFsUuid,
      kernelRelease,
      kernelCmdline: cmdline,
      boot: ctx.args.uefi ? ["bios", "uefi"] : ["bios"],
      image: { ...image } as Record<string, Json>,
    },
  };
}

function readImageInfo(rootfs: Artifact): ImageInfo {
  const file = path.join(rootfs.dir, "image.json");
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as ImageInfo) : {};
}

/** The filesystem UUID, also what GRUB searches for. */
export function derivedFsUuid(key: string): string {
  return derivedUuid(key, "root-filesystem");
}

function derivedHashSeed(key: string): string {
  return derivedUuid(key, "ext4-hash-seed");
}

/**
 * The kernel command line: root by partition UUID (the kernel resolves PARTUUID itself; LABEL= and UUID= would
 * need an initramfs), read-only until systemd remounts it, the serial console, classic NIC names when the image
 * asks for them, then the image's own parameters.
 */
export function kernelCommandLine(rootPartUuid: string, image: ImageInfo, extra: string[]): string {
  const naming = image.netNaming === "kernel" || image.netNaming === "eth" ? ["net.ifnames=0"] : [];
  return [`root=PARTUUID=${rootPartUuid.toLowerCase()}`, "ro", ...CONSOLE_PARAMS, ...naming, ...extra].join(
    " ",
  );
}

/** The date of the tree (its package database), for timestamps the build would otherwise take from the clock. */
function sourceDateEpoch(tree: string): number {
  const status = path.join(tree, "var", "lib", "dpkg", "status");
  return fs.existsSync(status) ? Math.floor(fs.statSync(status).mtimeMs / 1000) : 0;
}

/**
 * Installs the kernel into the tree: its Debian package when the kernel artifact has one (so `dpkg -l` in the VM
 * shows it and it can be upgraded like any package), else vmlinuz, config and System.map copied to /boot under
 * their release. Returns the kernel release, read from the bzImage header.
 */
async function installKernel(ctx: StepContext<DiskArgs>, kernel: Artifact, tree: string): Promise<string> {
  const vmlinuz = path.join(kernel.dir, kernel.meta.primary);
  const release = bzImageRelease(fs.readFileSync(vmlinuz));
  const deb = Object.keys(kernel.meta.files).find((f) => /^linux-image-.*\.deb$/.test(path.basename(f)));
  if (deb) {
    await ctx.log.exec("dpkg", [
      `--root=${tree}`,
      "--log=/dev/null",
      "--force-unsafe-io",
      "--install",
      path.join(kernel.dir, deb),
    ]);
  } else {
    const boot = path.join(tree, "boot");
    fs.mkdirSync(boot, { recursive: true });
    fs.copyFileSync(vmlinuz, path.join(boot, `vmlinuz-${release}`));
    for (const [file, name] of [
      ["config", "config"],
      ["System.map", "System.map"],
    ]) {
      if (kernel.meta.files[file])
        fs.copyFileSync(path.join(kernel.dir, file), path.join(boot, `${name}-${release}`));
    }
  }
  if (!fs.existsSync(path.join(tree, "boot", `vmlinuz-${release}`))) {
    throw new Error(
      `the kernel package ${deb} did not install /boot/vmlinuz-${release} (the release in ${kernel.meta.primary})`,
    );
  }
  return release;
}

/** The kernel release (`uname -r`) recorded in a bzImage's setup header (`kernel_version`, Linux boot protocol). */
export function bzImageRelease(image: Buffer): string {
  if (image.length < 0x220 || image.toString("latin1", 0x202, 0x206) !== "HdrS") {
    throw new Error("the kernel artifact's primary file is not a bzImage (no 'HdrS' setup header)");
  }
  const offset = image.readUInt16LE(0x20e) + 0x200;
  const end = image.indexOf(0, offset);
  const version = image.toString("latin1", offset, end);
  return version.split(" ")[0];
}

/** GRUB's modules go where the early config's prefix points, so `normal` can load what grub.cfg uses. */
function installGrubFiles(tree: string, uefi: boolean): void {
  for (const platform of uefi ? ["i386-pc", "x86_64-efi"] : ["i386-pc"]) {
    const target = path.join(tree, "boot", "grub", platform);
    fs.mkdirSync(target, { recursive: true });
    for (const file of fs.readdirSync(path.join(GRUB_LIB, platform))) {
      if (/\.(mod|lst)$/.test(file))
        fs.copyFileSync(path.join(GRUB_LIB, platform, file), path.join(target, file));
    }
  }
}

/**
 * `mkfs.ext4 -d` (e2fsprogs 1.47.0) copies each file's atime and ctime from the tree, where they are the time of this
 * build (ctime cannot be set from user space). debugfs sets them to the tree's date, in place, through the
 * partition's offset in the image file. Names containing a double quote or a newline cannot be written in a debugfs
 * script; Debian trees have none, and such a file would only keep its build-time ctime.
 */
async function pinInodeTimes(
  ctx: StepContext<DiskArgs>,
  tree: string,
  filesystem: string,
  epoch: number,
  env: Record<string, string>,
): Promise<void> {
  const { stdout } = await ctx.log.exec("find", [tree, "-mindepth", "1", "-printf", "%P\\0"], {
    capture: true,
  });
  const paths = ["", ...stdout.split("\0").filter((p) => p !== "" && !/["\n]/.test(p))];
  const script = paths
    .flatMap((p) => [`sif "/${p}" atime @${epoch}`, `sif "/${p}" ctime @${epoch}`])
    .join("\n");
  const file = path.join(ctx.work, "inode-times.debugfs");
  fs.writeFileSync(file, script + "\n");
  // capture: debugfs echoes every command; its errors still reach the log.
  await ctx.log.exec("debugfs", ["-w", "-f", file, filesystem], { env, capture: true });
}

/** Fails early, with sizes, instead of letting mkfs stop halfway with "Could not allocate block". */
async function checkTreeFits(
  ctx: StepContext<DiskArgs>,
  tree: string,
  partitionBytes: number,
): Promise<void> {
  const { stdout } = await ctx.log.exec("du", ["-s", "--block-size=1", "-x", tree], { capture: true });
  const used = Number(stdout.split(/\s/)[0]);
  // ext4 keeps about 10% for its journal, inode tables and reserved blocks on small filesystems.
  if (used > partitionBytes * 0.9) {
    throw new Error(
      `the root filesystem needs ${Math.ceil(used / MIB)} MiB but a ${ctx.args.sizeBytes / MIB} MiB disk leaves ` +
        `${Math.floor(partitionBytes / MIB)} MiB for it (less ext4's overhead): give the disk a larger size`,
    );
  }
}

/** The EFI system partition: FAT with GRUB as the removable-media path EFI/BOOT/BOOTX64.EFI, needing no NVRAM entry. */
async function writeEsp(
  ctx: StepContext<DiskArgs>,
  raw: string,
  start: number,
  sectors: number,
  early: string,
  env: Record<string, string>,
): Promise<void> {
  const efi = path.join(ctx.work, "BOOTX64.EFI");
  await ctx.log.exec("grub-mkimage", mkimageArgs("x86_64-efi", efi, early), { env });
  const esp = path.join(ctx.work, "esp.img");
  const volumeId = ctx.spec.key.slice(0, 8);
  // --invariant: the volume label's directory entry would otherwise carry the time of day (-i still sets the id).
  const kib = String((sectors * SECTOR) / 1024);
  await ctx.log.exec("mkfs.vfat", ["--invariant", "-C", "-i", volumeId, "-n", "ESP", esp, kib], { env });
  await ctx.log.exec("mmd", ["-i", esp, "::/EFI", "::/EFI/BOOT"], { env });
  // mcopy dates the copy by the file's mtime, which is now.
  fs.utimesSync(efi, Number(env.SOURCE_DATE_EPOCH), Number(env.SOURCE_DATE_EPOCH));
  await ctx.log.exec("mcopy", ["-i", esp, efi, "::/EFI/BOOT/BOOTX64.EFI"], { env });
  await ctx.log.exec("dd", [
    `if=${esp}`,
    `of=${raw}`,
    `bs=${SECTOR}`,
    `seek=${start}`,
    "conv=notrunc,sparse",
  ]);
}
