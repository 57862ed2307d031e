import Ajv, { ErrorObject } from "ajv";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { ImageMetadata, imageMetadataSchema } from "./schema";

/** The metadata file in an image folder. */
export const METADATA_FILE = "metadata.yaml";

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
      (validate.errors ?? []).map((e) => describe(e, doc)),
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
  return metadata;
}

/** `/ports/1/port` → `ports[1].port` */
function fieldName(pointer: string): string {
  return pointer
    .split("/")
    .slice(1)
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part.replace(/~1/g, "/").replace(/~0/g, "~")}`))
    .join("")
    .replace(/^\./, "");
}

function valueAt(doc: unknown, pointer: string): unknown {
  return pointer
    .split("/")
    .slice(1)
    .reduce<unknown>(
      (v, part) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined),
      doc,
    );
}

function describe(error: ErrorObject, doc: unknown): string {
  const params = error.params as Record<string, unknown>;
  const field = fieldName(error.instancePath);
  const got = JSON.stringify(valueAt(doc, error.instancePath));
  const at = (child: string) => (field ? `${field}.${child}` : child);
  switch (error.keyword) {
    case "required":
      return `${at(String(params.missingProperty))}: required, but missing`;
    case "additionalProperties":
      return `${at(String(params.additionalProperty))}: unknown field (expected one of ${Object.keys(
        (schemaAt(error.schemaPath) ?? {}) as object,
      ).join(", ")})`;
    case "type":
      return `${field}: expected ${params.type === "integer" ? "a whole number" : `a ${params.type}`}, got ${got}`;
    case "enum":
      return `${field}: expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}, got ${got}`;
    case "pattern":
      return `${field}: expected a value matching ${params.pattern}, got ${got}`;
    case "minimum":
    case "maximum":
      return `${field}: expected ${error.keyword === "minimum" ? "at least" : "at most"} ${params.limit}, got ${got}`;
    case "minLength":
      return `${field}: expected a non-empty string, got ${got}`;
    case "minItems":
    case "maxItems":
      return `${field}: expected ${error.keyword === "minItems" ? "at least" : "at most"} ${params.limit} entries`;
    case "uniqueItems":
      return `${field}: expected each entry once, got a repeat`;
    default:
      return `${field || "(document)"}: ${error.message ?? "invalid"}`;
  }
}

/** The `properties` of the schema object an `additionalProperties` error comes from. */
function schemaAt(schemaPath: string): unknown {
  const parts = schemaPath.replace(/^#\//, "").split("/").slice(0, -1);
  const node = parts.reduce<unknown>(
    (v, part) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined),
    imageMetadataSchema,
  );
  return node !== null && typeof node === "object" ? (node as Record<string, unknown>).properties : undefined;
}
