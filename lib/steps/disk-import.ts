import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Readable } from "stream";
import { pipeline } from "stream/promises";
import { Json, sha256File } from "../keys";
import { MIB } from "../vm/layout";
import {
  convertToCompressedQcow2,
  convertToQcow2,
  DISK_FORMATS,
  DiskFormat,
  diskImageInfo,
} from "../vm/qemu-img";
import { DISK_FILE } from "./disk";
import { DiskProvisioning, parseDiskProvisioning, provisionDisk, requireLibguestfs } from "./disk-provision";
import { argsObject, StepArgsError, StepContext, StepDefinition } from "./step";

export interface DiskImportArgs {
  /** Local path (absolute, or relative to the project directory) or http(s) URL of the vendor's image. */
  source: string;
  /** sha256 the vendor publishes for the file: what makes the import reproducible. */
  sha256: string;
  format: DiskFormat;
  /** Applied offline after conversion (Linux-based disks); null: the disk as the vendor made it. */
  provision: DiskProvisioning | null;
}

/**
 * Imports a vendor's disk image (vmdk, vdi, raw, qcow2): fetches or reads it, refuses it unless its sha256 is the
 * declared one, converts it to a compressed qcow2 and records where it came from. Like a fixed-output derivation in
 * Nix, the declared checksum is what pins the content, so the key does not hash the (large) file itself. The
 * original is kept in the artifact too (`outputs.original`), for the stack's bucket to archive: vendors withdraw
 * old releases.
 */
export const diskImportStep: StepDefinition<DiskImportArgs> = {
  kind: "disk-import",
  // 3: the original kept in the artifact and provisioning, which two versions 2 added each on their own.
  version: 3,
  parseArgs(raw: Json): DiskImportArgs {
    const args = argsObject(raw);
    if (typeof args.source !== "string" || args.source === "") {
      throw new StepArgsError("source", "a path or an http(s) URL", args.source);
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(args.source) && !/^https?:\/\//i.test(args.source)) {
      throw new StepArgsError("source", "a path or an http(s) URL", args.source);
    }
    if (typeof args.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(args.sha256)) {
      throw new StepArgsError("sha256", "64 lowercase hex digits", args.sha256);
    }
    if (typeof args.format !== "string" || !(DISK_FORMATS as readonly string[]).includes(args.format)) {
      throw new StepArgsError("format", `one of ${DISK_FORMATS.join(", ")}`, args.format);
    }
    if (args.provision === undefined) {
      throw new StepArgsError("provision", "the provisioning, or null", args.provision);
    }
    return {
      source: args.source,
      sha256: args.sha256,
      format: args.format as DiskFormat,
      provision: args.provision === null ? null : parseDiskProvisioning(args.provision),
    };
  },
  run: importDisk,
};

async function importDisk(ctx: StepContext<DiskImportArgs>) {
  const { source, format } = ctx.args;
  if (ctx.args.provision) requireLibguestfs();
  const isUrl = /^https?:\/\//i.test(source);
  // The original goes into the artifact as it is: downloaded there, or copied (a reflink where the file system can).
  const original = `original.${format}`;
  const file = path.join(ctx.out, original);
  let actual: string;
  if (isUrl) {
    ctx.log.progress(`${ctx.spec.image}: downloading ${source}`);
    actual = await download(source, file, ctx.signal);
  } else {
    const given = path.resolve(source);
    if (!fs.existsSync(given)) throw new Error(`the image to import does not exist: ${given}`);
    fs.copyFileSync(given, file, fs.constants.COPYFILE_FICLONE);
    actual = await sha256File(file);
  }
  if (actual !== ctx.args.sha256) {
    throw new Error(
      `${source}: checksum mismatch: expected sha256 ${ctx.args.sha256}, the file has ${actual}; ` +
        `the file changed or the declared checksum is wrong`,
    );
  }
  const sourceInfo = await diskImageInfo(ctx.log, file, format);
  ctx.log.progress(`${ctx.spec.image}: converting ${format} (${sourceInfo.virtualSize / MIB} MiB) to qcow2`);
  const output = path.join(ctx.out, DISK_FILE);
  if (ctx.args.provision) {
    // Customized on a plain qcow2 copy (the source is never written), then compressed.
    const customized = path.join(ctx.work, "customized.qcow2");
    await convertToQcow2(ctx.log, file, format, customized);
    ctx.log.progress(`${ctx.spec.image}: provisioning the disk (virt-customize)`);
    await provisionDisk(ctx.log, customized, "qcow2", ctx.args.provision, ctx.files, ctx.work);
    await convertToCompressedQcow2(ctx.log, customized, "qcow2", output);
  } else {
    await convertToCompressedQcow2(ctx.log, file, format, output);
  }
  const info = await diskImageInfo(ctx.log, output, "qcow2");
  return {
    primary: DISK_FILE,
    outputs: {
      sha256: await sha256File(output),
      virtualSize: info.virtualSize,
      sizeOnDisk: info.sizeOnDisk,
      original,
      provenance: { source, sha256: actual, format, sourceBytes: fs.statSync(file).size } as Record<
        string,
        Json
      >,
    },
  };
}

/** Streams a URL to a file, hashing on the way. */
async function download(url: string, file: string, signal: AbortSignal): Promise<string> {
  const response = await fetch(url, { signal });
  if (!response.ok || !response.body)
    throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  const hash = createHash("sha256");
  const body = Readable.fromWeb(response.body as import("stream/web").ReadableStream<Uint8Array>);
  body.on("data", (chunk: Buffer) => hash.update(chunk));
  await pipeline(body, fs.createWriteStream(file));
  return hash.digest("hex");
}
