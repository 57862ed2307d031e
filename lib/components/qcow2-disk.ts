import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { Json } from "../keys";
import { DiskArgs, diskStep } from "../steps/disk";
import { diskImportStep } from "../steps/disk-import";
import { DiskProvisioning, parseDiskProvisioning, provisionedFileRole } from "../steps/disk-provision";
import { imagePasswordHash } from "../steps/rootfs/password";
import { StepArgsError } from "../steps/step";
import { parseSize } from "../vm/layout";
import { DiskFormat } from "../vm/qemu-img";
import { rejectRenamedOptions } from "./renamed-options";
import { BuiltStep, StepComponent } from "./step-command";

export interface Qcow2DiskArgs {
  /** The root filesystem (a `Rootfs`): its tarball becomes the ext4 root partition. */
  rootfs: BuiltStep;
  /** The kernel (a `Kernel`): its package is installed into the tree and GRUB boots it. */
  kernel: BuiltStep;
  /** Virtual size of the disk: `2GiB`, `512MiB` or bytes; the image file only holds what is used. @default "2GiB" */
  size?: string | number;
  /**
   * Kernel parameters added after the disk's own (`root=PARTUUID=… ro console=tty0 console=ttyS0,115200`, plus
   * `net.ifnames=0` for images that use the kernel's NIC names). @default []
   */
  kernelCmdline?: string[];
  /** Also boot under UEFI firmware (EFI system partition with GRUB); BIOS boot is always there. @default true */
  uefi?: boolean;
  /**
   * Seconds GRUB waits (menu on Esc) before booting. 0 boots at once, as cloud images do: the wait is on every VM
   * start, and nobody sits at a lab VM's boot menu; set 1 or more to reach the menu on the serial console.
   * @default 0
   */
  grubTimeoutSeconds?: number;
  /** Image the disk belongs to. @default the component's name */
  image?: string;
}

export interface Qcow2DiskImportArgs {
  /** Local path, or http(s) URL, of the vendor's disk image. */
  source: string;
  /** The sha256 the vendor publishes: the import fails, naming both sums, when the file does not match. */
  sha256: string;
  /** Format of the source; never guessed. */
  format: DiskFormat;
  /**
   * Provisioning of a Linux-based vendor disk, applied offline to the converted disk with libguestfs
   * (virt-customize, Debian's libguestfs-tools, on the build host). @default none: the vendor's disk as it is
   */
  provision?: DiskProvisioningArgs;
  /** Image the disk belongs to. @default the component's name */
  image?: string;
}

/** What is set up on an imported Linux disk before its first boot. */
export interface DiskProvisioningArgs {
  /** Login user, created when the disk lacks it (home directory, /bin/sh). @default none: the disk's users as they are */
  user?: string;
  /**
   * The user's password in plain text; only its sha512-crypt hash (salt from image and user names) leaves the
   * program. Required with `user`.
   */
  password?: string;
  /** Passwordless sudo for `user` (the disk must have sudo). @default true */
  sudo?: boolean;
  /** sshd accepts password logins, whatever the vendor's configuration says. @default true when `user` is set */
  sshPasswordLogin?: boolean;
  /** Files put on the disk: `{ source, path, mode }` (mode default "0644", owner root); contents are key input. @default [] */
  files?: { source: string; path: string; mode?: string | number }[];
  /** A shell command run once, as root, at the first boot (virt-customize's first-boot service). @default none */
  firstBoot?: string;
}

/** Normalizes provisioning into step arguments and input files; fails naming the image and the field. */
export function diskProvisioningInputs(
  image: string,
  name: string,
  args: DiskProvisioningArgs,
): { provision: DiskProvisioning; files: Record<string, string> } {
  const fail = (field: string, expected: string, got: unknown): never => {
    throw new Error(
      `${image}: ${name}: bad argument ${new StepArgsError(`provision.${field}`, expected, got).message}`,
    );
  };
  if (args.user !== undefined && (typeof args.password !== "string" || args.password === "")) {
    fail("password", "the login user's password (with user)", "(nothing)");
  }
  const fileArgs = args.files ?? [];
  if (!Array.isArray(fileArgs)) fail("files", "a list", fileArgs);
  const files: Record<string, string> = {};
  const provision = {
    user:
      args.user === undefined
        ? null
        : {
            name: args.user,
            passwordHash: imagePasswordHash(args.password as string, image, args.user),
            sudo: args.sudo ?? true,
          },
    sshPasswordLogin: args.sshPasswordLogin ?? args.user !== undefined,
    files: fileArgs.map((file, i) => {
      if (!fs.statSync(file.source, { throwIfNoEntry: false })?.isFile())
        fail(`files[${i}].source`, "an existing file", file.source);
      const role = provisionedFileRole(i);
      files[role] = file.source;
      const mode =
        typeof file.mode === "number" ? file.mode.toString(8).padStart(4, "0") : (file.mode ?? "0644");
      return { role, path: file.path, mode };
    }),
    firstBoot: args.firstBoot ?? null,
  };
  try {
    return { provision: parseDiskProvisioning(provision as unknown as Json), files };
  } catch (err) {
    if (err instanceof StepArgsError) throw new Error(`${image}: ${name}: bad argument ${err.message}`);
    throw err;
  }
}

/**
 * The disk step's complete arguments for `args`, every default filled in here (Pulumi-free, so tests and benchmarks
 * build exactly the disk the component would).
 */
export function diskStepArgs(args: Omit<Qcow2DiskArgs, "rootfs" | "kernel" | "image">): DiskArgs {
  return {
    sizeBytes: parseSize(args.size ?? "2GiB"),
    kernelCmdline: args.kernelCmdline ?? [],
    uefi: args.uefi ?? true,
    grubTimeoutSeconds: args.grubTimeoutSeconds ?? 0,
  };
}

/**
 * A bootable, compressed qcow2 disk: built from a root filesystem and a kernel (GPT, ext4 root, GRUB for BIOS and
 * UEFI, serial console), or imported from a vendor's image with {@link Qcow2Disk.import}. Boots under plain
 * `qemu-system-x86_64 -drive file=disk.qcow2,if=virtio` with no `-kernel`.
 */
export class Qcow2Disk extends StepComponent {
  /** An imported disk's original: the file the vendor published, kept in the artifact (`outputs.original`). */
  readonly original?: { sha256: string; format: DiskFormat };

  constructor(
    name: string,
    args: Qcow2DiskArgs | { import: Qcow2DiskImportArgs },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("antidote:images:Qcow2Disk", name, {}, opts);
    if ("import" in args) {
      const { source, sha256, format, image } = args.import;
      this.original = { sha256, format };
      const isUrl = /^https?:\/\//i.test(source);
      const provisioning = args.import.provision
        ? diskProvisioningInputs(image ?? name, name, args.import.provision)
        : undefined;
      this.buildStep(name, {
        step: diskImportStep,
        image: image ?? name,
        // Relative to the project, like input files, so the key does not depend on where the checkout is.
        args: {
          source: isUrl ? source : path.relative(process.cwd(), path.resolve(source)),
          sha256,
          format,
          provision: provisioning ? (provisioning.provision as unknown as Json) : null,
        },
        files: provisioning?.files,
      });
      this.registerStepOutputs();
      return;
    }
    const image = args.image ?? name;
    rejectRenamedOptions(`${image}: Qcow2Disk ${name}`, args, {
      grubTimeout: { now: "grubTimeoutSeconds", unit: "seconds" },
    });
    this.buildStep(name, {
      step: diskStep,
      image,
      args: { ...diskStepArgs(args) },
      parents: { rootfs: args.rootfs, kernel: args.kernel },
    });
    this.registerStepOutputs();
  }

  /** A vendor's disk image (vmdk, vdi, raw or qcow2), checked against its sha256 and converted to compressed qcow2. */
  static import(name: string, args: Qcow2DiskImportArgs, opts?: pulumi.ComponentResourceOptions): Qcow2Disk {
    return new Qcow2Disk(name, { import: args }, opts);
  }
}
