import { sha256 } from "../keys";

export const MIB = 1024 * 1024;
export const SECTOR = 512;

/** GPT partition type GUIDs. */
export const PARTITION_TYPES = {
  biosBoot: "21686148-6449-6E6F-744E-656564454649",
  esp: "C12A7328-F81F-11D2-BA4B-00A0C93EC3B8",
  linuxRoot: "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
} as const;

export interface Partition {
  /** Partition number (the `N` of `/dev/vdaN`). */
  number: number;
  name: "root" | "bios" | "esp";
  /** First sector. */
  start: number;
  /** Length in sectors. */
  size: number;
  type: string;
  uuid: string;
}

export interface DiskLayout {
  /** GPT disk GUID. */
  diskId: string;
  /** In the order of the disk, which is not the order of their numbers. */
  partitions: Partition[];
}

/** Size of the BIOS boot partition that holds GRUB's core.img (about 150 KiB). */
const BIOS_BOOT_BYTES = MIB;
/** The EFI system partition holds only BOOTX64.EFI (about 650 KiB); FAT16 on 16 MiB, empty space costs nothing. */
const ESP_BYTES = 16 * MIB;
/** The last MiB stays free for the backup GPT (33 sectors), keeping the root partition MiB-aligned. */
const TAIL_BYTES = MIB;

/**
 * A UUID derived from the step key and what it names, so a rebuild of the same inputs gets the same UUIDs (and the
 * same bytes) while different disks never share one. Formatted as a version-4 UUID.
 */
export function derivedUuid(key: string, purpose: string): string {
  const h = sha256(`${key}:${purpose}`);
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The partition layout of Debian's cloud images: root is partition 1 (`/dev/vda1`) though it comes last on the disk,
 * 14 is the BIOS boot partition GRUB's core.img lives in, 15 the EFI system partition. Hybrid BIOS + UEFI boot on
 * one GPT disk.
 */
export function diskLayout(key: string, sizeBytes: number, uefi: boolean): DiskLayout {
  const sectors = (bytes: number) => bytes / SECTOR;
  const partitions: Partition[] = [];
  let next = MIB;
  const add = (number: number, name: Partition["name"], type: string, bytes: number) => {
    partitions.push({
      number,
      name,
      start: sectors(next),
      size: sectors(bytes),
      type,
      uuid: derivedUuid(key, `partition-${name}`).toUpperCase(),
    });
    next += bytes;
  };
  add(14, "bios", PARTITION_TYPES.biosBoot, BIOS_BOOT_BYTES);
  if (uefi) add(15, "esp", PARTITION_TYPES.esp, ESP_BYTES);
  const rootBytes = sizeBytes - next - TAIL_BYTES;
  if (rootBytes < 16 * MIB) {
    throw new Error(`a ${sizeBytes / MIB} MiB disk leaves no room for the root partition`);
  }
  add(1, "root", PARTITION_TYPES.linuxRoot, rootBytes);
  return { diskId: derivedUuid(key, "disk").toUpperCase(), partitions };
}

/** The layout as an `sfdisk` script (GPT, explicit partition numbers, fixed GUIDs). */
export function sfdiskScript(layout: DiskLayout, device: string): string {
  return [
    "label: gpt",
    `label-id: ${layout.diskId}`,
    "first-lba: 2048",
    ...layout.partitions.map(
      (p) =>
        `${device}${p.number} : start=${p.start}, size=${p.size}, type=${p.type}, uuid=${p.uuid}, name=${p.name}`,
    ),
    "",
  ].join("\n");
}

export function partition(layout: DiskLayout, name: Partition["name"]): Partition | undefined {
  return layout.partitions.find((p) => p.name === name);
}

/** Parses sizes such as `2GiB`, `512M`, `2147483648`: binary units, a whole number of MiB. */
export function parseSize(size: string | number): number {
  const units: Record<string, number> = { "": 1, k: 1024, m: MIB, g: 1024 * MIB, t: 1024 * 1024 * MIB };
  const match = /^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(String(size));
  if (!match) throw new Error(`not a size: '${size}' (use e.g. 2GiB, 512MiB or a number of bytes)`);
  const bytes = Number(match[1]) * units[match[2].toLowerCase()];
  if (bytes % MIB !== 0) throw new Error(`size ${size} is not a whole number of MiB`);
  return bytes;
}
