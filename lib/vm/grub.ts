import * as fs from "fs";

/** Where Debian's grub-pc-bin and grub-efi-amd64-bin keep GRUB's images and modules. */
export const GRUB_LIB = "/usr/lib/grub";

/**
 * Modules built into the core images. With them GRUB finds the root filesystem by UUID, enables the serial console
 * before anything can go wrong and loads `normal`, which then loads the rest from `/boot/grub/<platform>/`.
 */
export const CORE_MODULES = [
  "part_gpt",
  "part_msdos",
  "ext2",
  "search",
  "search_fs_uuid",
  "normal",
  "configfile",
  "linux",
  "serial",
  "terminal",
  "echo",
  "test",
  "sleep",
  "halt",
];

/** Extra modules per platform: the BIOS disk driver; the EFI framebuffer for a learner's VNC console. */
export const PLATFORM_MODULES: Record<GrubPlatform, string[]> = {
  "i386-pc": ["biosdisk"],
  "x86_64-efi": ["fat", "efi_gop"],
};

export type GrubPlatform = "i386-pc" | "x86_64-efi";

/** Serial console first, so GRUB's own errors (a missing filesystem, a bad config) reach the console log too. */
const SERIAL = [
  "serial --unit=0 --speed=115200",
  "terminal_input serial console",
  // EFI's text console already goes to the serial port through the firmware: writing to both doubles every line.
  'if [ "$grub_platform" = efi ]; then terminal_output serial; else terminal_output serial console; fi',
];

/** The configuration built into core.img / BOOTX64.EFI: find the root filesystem, then hand over to grub.cfg. */
export function earlyConfig(rootFsUuid: string): string {
  return [
    ...SERIAL,
    `search --no-floppy --fs-uuid --set=root ${rootFsUuid}`,
    "set prefix=($root)/boot/grub",
    "",
  ].join("\n");
}

export interface BootEntry {
  /** Path of the kernel inside the root filesystem, e.g. `/boot/vmlinuz-6.1.0-antidote`. */
  kernel: string;
  /** Full kernel command line. */
  cmdline: string;
  /** Seconds GRUB waits before booting; the menu shows on Esc. */
  timeoutSeconds: number;
  title: string;
}

/** `/boot/grub/grub.cfg`: serial console, a short hidden timeout and one entry; no initrd (the kernel needs none). */
export function grubConfig(entry: BootEntry): string {
  return [
    "# Written by antidote-images (Qcow2Disk). Kernel command line: see the disk's outputs.",
    ...SERIAL,
    `set timeout=${entry.timeoutSeconds}`,
    "set timeout_style=hidden",
    `menuentry '${entry.title.replace(/'/g, "")}' {`,
    `  linux ${entry.kernel} ${entry.cmdline}`,
    "}",
    "",
  ].join("\n");
}

/** Offsets in GRUB's boot.img (grub/i386/pc/boot.h) and diskboot.img (the first sector of core.img). */
const BPB_START = 0x3;
const BPB_END = 0x5a;
const KERNEL_SECTOR = 0x5c;
const DRIVE_CHECK = 0x66;
const PARTITION_TABLE_START = 0x1b8;
const PARTITION_TABLE_END = 0x1fe;
const SECTOR = 512;
/** diskboot.img's first blocklist entry: {start: u64, length: u16, segment: u16}, the last 12 bytes of its sector. */
const BLOCKLIST_START = SECTOR - 12;
const BLOCKLIST_LENGTH = SECTOR - 4;

/**
 * Installs GRUB's BIOS boot code into a disk image file, as `grub-bios-setup` does for a live disk (that tool insists
 * on probing the host device that holds its files, so it cannot work on an image): `core.img` is written whole at
 * `coreSector` (the BIOS boot partition) and `boot.img` into the MBR, keeping the disk's partition table and
 * pointing at core.img. core.img's own blocklist then names the sectors after its first, which grub-mkimage sized.
 */
export function installBiosBootCode(
  disk: string,
  bootImg: Buffer,
  coreImg: Buffer,
  coreSector: number,
): void {
  if (bootImg.length !== SECTOR) throw new Error(`boot.img is ${bootImg.length} bytes, expected ${SECTOR}`);
  const core = Buffer.from(coreImg);
  const restSectors = core.readUInt16LE(BLOCKLIST_LENGTH);
  if (restSectors !== Math.ceil(core.length / SECTOR) - 1) {
    throw new Error(
      `core.img's blocklist reads ${restSectors} sectors but the image has ${Math.ceil(core.length / SECTOR)}: ` +
        `not a core.img from grub-mkimage -O i386-pc`,
    );
  }
  core.writeBigUInt64LE(BigInt(coreSector + 1), BLOCKLIST_START);

  const fd = fs.openSync(disk, "r+");
  try {
    const mbr = Buffer.alloc(SECTOR);
    fs.readSync(fd, mbr, 0, SECTOR, 0);
    const boot = Buffer.from(bootImg);
    mbr.copy(boot, BPB_START, BPB_START, BPB_END);
    mbr.copy(boot, PARTITION_TABLE_START, PARTITION_TABLE_START, PARTITION_TABLE_END);
    boot.writeBigUInt64LE(BigInt(coreSector), KERNEL_SECTOR);
    // A hard disk: trust drive 0x80 even when a BIOS passes a floppy number (grub-bios-setup does the same).
    boot[DRIVE_CHECK] = 0x90;
    boot[DRIVE_CHECK + 1] = 0x90;
    fs.writeSync(fd, boot, 0, SECTOR, 0);
    fs.writeSync(fd, core, 0, core.length, coreSector * SECTOR);
  } finally {
    fs.closeSync(fd);
  }
}

/** Argument list of `grub-mkimage` for one platform's core image with the early config built in. */
export function mkimageArgs(platform: GrubPlatform, output: string, earlyConfigFile: string): string[] {
  return [
    "-O",
    platform,
    "-d",
    `${GRUB_LIB}/${platform}`,
    "-o",
    output,
    "-p",
    "/boot/grub",
    "-c",
    earlyConfigFile,
    ...CORE_MODULES,
    ...PLATFORM_MODULES[platform],
  ];
}
