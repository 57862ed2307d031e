import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { DiskArgs, diskStep } from "../steps/disk";
import { diskImportStep } from "../steps/disk-import";
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
  /** Image the disk belongs to. @default the component's name */
  image?: string;
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
      this.buildStep(name, {
        step: diskImportStep,
        image: image ?? name,
        // Relative to the project, like input files, so the key does not depend on where the checkout is.
        args: { source: isUrl ? source : path.relative(process.cwd(), path.resolve(source)), sha256, format },
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
