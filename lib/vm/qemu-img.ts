import * as fs from "fs";
import { CommandLog } from "../exec";

/** Disk formats `qemu-img` converts from. The format is always given, never probed (a probed raw image can lie). */
export const DISK_FORMATS = ["qcow2", "raw", "vmdk", "vdi"] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];

export interface DiskImageInfo {
  format: string;
  virtualSize: number;
  /** Bytes the file occupies on disk (allocated blocks, so holes do not count). */
  sizeOnDisk: number;
}

/**
 * Converts to a compressed, sparse qcow2: zstd clusters (qemu ≥ 5.1; faster than zlib to read and write), writes in
 * order (no `-W`) so equal input gives an identical file.
 */
export async function convertToCompressedQcow2(
  log: CommandLog,
  source: string,
  format: DiskFormat,
  output: string,
): Promise<void> {
  await log.exec("qemu-img", [
    "convert",
    "-f",
    format,
    "-O",
    "qcow2",
    "-c",
    "-o",
    "compression_type=zstd",
    source,
    output,
  ]);
}

/** Converts to a plain (uncompressed) qcow2, a working copy to change before compressing it. */
export async function convertToQcow2(
  log: CommandLog,
  source: string,
  format: DiskFormat,
  output: string,
): Promise<void> {
  await log.exec("qemu-img", ["convert", "-f", format, "-O", "qcow2", source, output]);
}

export async function diskImageInfo(
  log: CommandLog,
  file: string,
  format?: DiskFormat,
): Promise<DiskImageInfo> {
  const { stdout } = await log.exec(
    "qemu-img",
    ["info", "--output=json", ...(format ? ["-f", format] : []), file],
    { capture: true },
  );
  const info = JSON.parse(stdout) as { format: string; "virtual-size": number };
  return {
    format: info.format,
    virtualSize: info["virtual-size"],
    sizeOnDisk: fs.statSync(file).blocks * 512,
  };
}
