import * as fs from "fs";
import * as path from "path";
import { Json } from "../keys";
import { argsObject, StepArgsError, StepDefinition } from "./step";

export interface ArchiveArgs {
  /** Name of the archive file. */
  output: string;
}

/**
 * Packs the primary file of every parent into a reproducible `.tar.gz`: entries sorted, owners and mtimes fixed,
 * no gzip timestamp, so equal inputs give a byte-identical archive.
 */
export const archiveStep: StepDefinition<ArchiveArgs> = {
  kind: "archive",
  version: 1,
  parseArgs(raw: Json): ArchiveArgs {
    const args = argsObject(raw);
    if (typeof args.output !== "string" || !/^[A-Za-z0-9._-]+\.tar\.gz$/.test(args.output)) {
      throw new StepArgsError("output", "a file name ending in .tar.gz", args.output);
    }
    return { output: args.output };
  },
  async run(ctx) {
    const staging = path.join(ctx.work, "staging");
    fs.mkdirSync(staging);
    for (const [role, artifact] of Object.entries(ctx.parents)) {
      fs.mkdirSync(path.join(staging, role));
      fs.copyFileSync(
        path.join(artifact.dir, artifact.meta.primary),
        path.join(staging, role, artifact.meta.primary),
      );
    }
    const output = path.join(ctx.out, ctx.args.output);
    await ctx.log.exec(
      "tar",
      [
        "--sort=name",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--mode=u+rw,go+r,go-w",
        "-C",
        staging,
        "-cf",
        path.join(ctx.work, "archive.tar"),
        ".",
      ],
      {},
    );
    await ctx.log.exec("sh", ["-c", `gzip -n -9 < "$0" > "$1"`, path.join(ctx.work, "archive.tar"), output]);
    return { primary: ctx.args.output, outputs: { members: Object.keys(ctx.parents).sort() } };
  },
};
