import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

/** A JSON value: what step arguments and results are made of. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * What a step's key is computed from. Files are named by their role in the step (e.g. `install.sh`),
 * not by their path, so moving the checkout (or an image folder) does not change a key.
 */
export interface KeyInputs {
  /** Step kind, e.g. `rootfs`. */
  kind: string;
  /** Version of the step's implementation; bumping it rebuilds every artifact of that kind. */
  version: number;
  /** Normalized arguments. */
  args: Json;
  /** Role → path of every file the step reads (relative to `root`, or absolute). */
  files: Record<string, string>;
  /** Role → key of every step this one depends on. */
  parents: Record<string, string>;
}

/** The hashed form of {@link KeyInputs}: recorded in the store so `plan` and `diff` can say what moved. */
export interface InputsSummary {
  kind: string;
  version: number;
  args: Json;
  /** Role → sha256 of the file's contents. */
  files: Record<string, string>;
  parents: Record<string, string>;
}

/** JSON with object keys sorted at every level, so equal values always serialize to equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new Error(`cannot key a non-finite number (${value})`);
  }
  return value;
}

export function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** sha256 of a file's contents, streamed so large artifacts do not have to fit in memory. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Hashes the inputs; fails naming the role and path of a file that cannot be read. */
export function summarizeInputs(inputs: KeyInputs, root: string = process.cwd()): InputsSummary {
  const files: Record<string, string> = {};
  for (const [role, file] of Object.entries(inputs.files)) {
    let content: Buffer;
    try {
      content = fs.readFileSync(path.resolve(root, file));
    } catch (err) {
      throw new Error(`${inputs.kind}: cannot read input '${role}' at ${file}: ${(err as Error).message}`);
    }
    files[role] = sha256(content);
  }
  return {
    kind: inputs.kind,
    version: inputs.version,
    args: JSON.parse(canonicalJson(inputs.args)) as Json,
    files,
    parents: { ...inputs.parents },
  };
}

export function keyOfSummary(summary: InputsSummary): string {
  return sha256(canonicalJson(summary));
}

/** The step key: sha256 over kind, version, canonical arguments, file contents and parent keys. */
export function stepKey(inputs: KeyInputs, root?: string): string {
  return keyOfSummary(summarizeInputs(inputs, root));
}

/** A short form of a key for tags and display. */
export function shortKey(key: string): string {
  return key.slice(0, 12);
}

/** How two summaries differ, for `plan`: the files, arguments and parents that moved. */
export interface InputChange {
  what: "file" | "arg" | "parent" | "kind" | "version";
  name: string;
  from?: string;
  to?: string;
}

export function diffSummaries(before: InputsSummary, after: InputsSummary): InputChange[] {
  const changes: InputChange[] = [];
  if (before.kind !== after.kind)
    changes.push({ what: "kind", name: "kind", from: before.kind, to: after.kind });
  if (before.version !== after.version) {
    changes.push({
      what: "version",
      name: "version",
      from: String(before.version),
      to: String(after.version),
    });
  }
  const compare = (what: "file" | "parent", a: Record<string, string>, b: Record<string, string>) => {
    for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      if (a[name] !== b[name]) changes.push({ what, name, from: a[name], to: b[name] });
    }
  };
  compare("file", before.files, after.files);
  flattenArgs(before.args, after.args, "", changes);
  compare("parent", before.parents, after.parents);
  return changes;
}

function flattenArgs(a: Json | undefined, b: Json | undefined, prefix: string, out: InputChange[]): void {
  const isObject = (v: Json | undefined): v is { [key: string]: Json } =>
    v !== null && typeof v === "object" && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      flattenArgs(a[k], b[k], prefix ? `${prefix}.${k}` : k, out);
    }
    return;
  }
  const from = a === undefined ? undefined : canonicalJson(a);
  const to = b === undefined ? undefined : canonicalJson(b);
  if (from !== to) out.push({ what: "arg", name: prefix || "(args)", from, to });
}
