import * as fs from "fs";
import * as path from "path";
import { buildCatalog, renderMarkdown } from "../catalog/catalog";
import { renderHtml } from "../catalog/html";
import { defaultStoreDir, LocalStore } from "../store/local";
import { parseArgs, UsageError } from "./args";

export const catalogHelp = `usage: antidote-images catalog [repository] [--format json|markdown|html] [--output FILE] [--store DIR]

Lists every image of a curriculum repository (its images/*/metadata.yaml, or any folder with a metadata.yaml):
what it is, capabilities, interfaces, ports, credentials, base and derived images; with an artifact store, also
each image's last built keys, its kernel and where it was published. The HTML form is one static page with the
dependency graph between images and kernels.

options:
  repository        the repository's folder                         default: the current folder
  --format F        json, markdown or html                          default: markdown
  --output FILE     write to FILE instead of stdout
  --store DIR       artifact store with build records               default: $ANTIDOTE_STORE or ~/.cache/antidote-images`;

const FORMATS = ["json", "markdown", "html"];

export async function catalogCommand(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv, ["format", "output", "store"]);
  if (flags.help) {
    console.log(catalogHelp);
    return 0;
  }
  if (positional.length > 1) throw new UsageError(`one repository at a time, got ${positional.length}`);
  const format = typeof flags.format === "string" ? flags.format : "markdown";
  if (!FORMATS.includes(format))
    throw new UsageError(`--format must be one of ${FORMATS.join(", ")}, got '${format}'`);
  const repository = path.resolve(positional[0] ?? ".");
  if (!fs.existsSync(repository)) throw new UsageError(`no folder ${repository}`);
  const storeDir = typeof flags.store === "string" ? path.resolve(flags.store) : defaultStoreDir();
  const store = fs.existsSync(storeDir) ? new LocalStore(storeDir) : undefined;
  const catalog = await buildCatalog(repository, store);
  const text =
    format === "json"
      ? JSON.stringify(catalog, null, 2) + "\n"
      : format === "html"
        ? renderHtml(catalog)
        : renderMarkdown(catalog);
  if (typeof flags.output === "string") fs.writeFileSync(flags.output, text);
  else process.stdout.write(text);
  for (const problem of catalog.problems) process.stderr.write(`catalog: ${problem}\n`);
  if (catalog.images.length === 0 && catalog.problems.length === 0) {
    process.stderr.write(`catalog: no images in ${repository} (no images/*/metadata.yaml)\n`);
  }
  return catalog.problems.length > 0 ? 1 : 0;
}
