import Ajv from "ajv";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { schemaProblems } from "../schema-errors";
import { ImageMetadata, imageMetadataSchema } from "./schema";

/** The metadata file in an image folder. */
export const METADATA_FILE = "metadata.yaml";

/** The port every image forwards, whatever it declares: the container's health check logs in over it. */
const SSH_PORT: ImageMetadata["ports"][number] = { port: 22, protocol: "tcp", name: "ssh" };

const validate = new Ajv({ allErrors: true, useDefaults: true }).compile(imageMetadataSchema);

/** Invalid metadata: names the file, each field, what was expected and what was found. */
export class MetadataError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join("\n  ")}`}`);
  }
}

/** Reads and validates `<dir>/metadata.yaml`, filling in defaults. */
export function loadMetadata(dir: string): ImageMetadata {
  const file = path.join(dir, METADATA_FILE);
  const relative = path.relative(process.cwd(), file);
  const shown = relative.startsWith("..") ? file : relative;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new MetadataError(shown, [`missing: every image folder needs a ${METADATA_FILE}`]);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new MetadataError(shown, [`not valid YAML: ${(err as Error).message.split("\n")[0]}`]);
  }
  return checkMetadata(doc, shown, path.basename(dir));
}

/** Validates a parsed metadata document; `folder` is the image folder's name, which `name` must equal. */
export function checkMetadata(doc: unknown, file: string, folder?: string): ImageMetadata {
  if (!validate(doc))
    throw new MetadataError(
      file,
      schemaProblems(validate.errors ?? [], doc, imageMetadataSchema).map((p) => `${p.entry}: ${p.message}`),
    );
  const metadata = doc as unknown as ImageMetadata;
  const problems: string[] = [];
  if (folder !== undefined && metadata.name !== folder) {
    problems.push(`name: expected the folder's name '${folder}', got '${metadata.name}'`);
  }
  if (metadata.base === metadata.name)
    problems.push(`base: an image cannot build on itself ('${metadata.name}')`);
  if (metadata.interfaces[0].purpose !== "management") {
    problems.push(
      `interfaces[0].purpose: expected 'management' (the first NIC carries SSH and the forwarded ports)`,
    );
  }
  for (const [list, field] of [
    [metadata.interfaces.map((i) => i.name), "interfaces"],
    [metadata.ports.map((p) => `${p.port}/${p.protocol}`), "ports"],
  ] as const) {
    const dupes = list.filter((v, i) => list.indexOf(v) !== i);
    if (dupes.length > 0)
      problems.push(`${field}: expected each once, got ${[...new Set(dupes)].join(", ")} twice`);
  }
  if (problems.length > 0) throw new MetadataError(file, problems);
  if (!metadata.ports.some((p) => p.port === SSH_PORT.port && p.protocol === SSH_PORT.protocol))
    metadata.ports.unshift({ ...SSH_PORT });
  return metadata;
}
