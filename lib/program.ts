import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { ContainerImage } from "./components/container-image";
import { BuiltStep } from "./components/step-command";
import { CONFIG_NAMESPACE } from "./config-keys";
import { projectSettings } from "./config";
import { publishSettings } from "./publishing";
import { typeCheckCacheDir, typeCheckImages } from "./typecheck";

/**
 * What the stack exports for each built step: its key, known while the program runs (a plan and `pulumi preview`
 * show it), and what only a build gives.
 */
export interface StepOutput {
  key: string;
  location: pulumi.Output<string>;
  sha256: pulumi.Output<string>;
  size: pulumi.Output<number>;
  /** A ContainerImage's pushed image, `<registry>/<repository>@sha256:…` (when the stack pushes). */
  reference?: pulumi.Output<string>;
  /** A ContainerImage's disk (and kernel package) in the stack's bucket (when it has one). */
  diskObject?: string;
  kernelObject?: string;
  /** An imported disk's original, archived beside it. */
  originalObject?: string;
}

/** Image folder → step name → its output. */
export type ImagesOutput = Record<string, Record<string, StepOutput>>;

/** The folders under `dir` that hold an `image.ts`, sorted. */
export function listImages(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, "image.ts")))
    .map((e) => e.name)
    .sort();
}

/**
 * Loads every `images/<name>/image.ts` (adding an image is adding a folder), or only those named in the
 * `antidote-images:images` config list; an image's own imports bring in the images it builds on. Returns each
 * image's built steps for the stack outputs.
 */
export function loadImages(): ImagesOutput {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  const dir = path.resolve(config.get("imagesDir") ?? "images");
  const available = listImages(dir);
  const selected = config.getObject<string[]>("images") ?? [];
  const unknown = selected.filter((name) => !available.includes(name));
  if (unknown.length > 0) {
    throw new pulumi.RunError(
      `no image named ${unknown.map((u) => `'${u}'`).join(", ")} in ${dir}; images: ${available.join(", ") || "none"}`,
    );
  }
  // The stack's settings first: a missing secret is the stack's problem, not the first image's.
  authorError(() => {
    projectSettings();
    publishSettings();
  });
  const names = selected.length > 0 ? selected : available;
  // The program is only transpiled (ts-node with SWC): the compiler's errors are found here, before any registration.
  const roots = names.map((name) => path.join(dir, name, "image.ts"));
  const typeErrors = typeCheckImages(roots, dir, typeCheckCacheDir());
  if (typeErrors.length > 0) {
    throw new pulumi.RunError(`the images do not type-check:\n${typeErrors.join("\n")}`);
  }
  const outputs: ImagesOutput = {};
  for (const name of names) {
    const exports = loadImage(dir, name);
    outputs[name] = Object.fromEntries(
      builtSteps(exports).map((step) => [
        step.stepName,
        {
          key: step.key,
          location: step.result.location,
          sha256: step.result.sha256,
          size: step.result.size,
          ...(step instanceof ContainerImage
            ? {
                reference: step.reference,
                diskObject: step.diskObject,
                kernelObject: step.kernelObject,
                originalObject: step.originalObject,
              }
            : {}),
        },
      ]),
    );
  }
  return outputs;
}

/**
 * Requires `<dir>/<name>/image.ts`. An error names the image file it was thrown from: the innermost frame of its
 * stack in `dir` (an image's import of its base runs the base's image.ts), else the file required.
 */
function loadImage(dir: string, name: string): Record<string, unknown> {
  const file = path.join(dir, name, "image.ts");
  // Deep enough that the image's frame is still there under a component's own calls.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 100;
  try {
    return authorError(
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- images are found at run time, by folder
      () => require(file) as Record<string, unknown>,
      (err) => `${path.relative(process.cwd(), imageFrame(err, dir) ?? file)}: `,
    );
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** The file of the innermost stack frame of `err` under `dir` (named under `dir`, as modules load by real path). */
function imageFrame(err: Error, dir: string): string | undefined {
  const realDir = fs.realpathSync(dir) + path.sep;
  for (const line of (err.stack ?? "").split("\n").slice(1)) {
    const at = line.indexOf(realDir);
    const frame = at < 0 ? undefined : /^(.+?):\d+:\d+\)?$/.exec(line.slice(at + realDir.length));
    if (frame) return path.join(dir, frame[1]);
  }
  return undefined;
}

/**
 * Runs `load`; an error it throws is the author's or the stack's to fix, so it becomes a `pulumi.RunError`: the
 * message (after `prefix`, e.g. the image file) without the program's stack trace, which the Pulumi CLI and the local
 * runner would print for any other error. `ANTIDOTE_DEBUG` keeps the original.
 */
function authorError<T>(load: () => T, prefix: (err: Error) => string = () => ""): T {
  try {
    return load();
  } catch (err) {
    if (process.env.ANTIDOTE_DEBUG || !(err instanceof Error)) throw err;
    throw new pulumi.RunError(`${prefix(err)}${err.message}`);
  }
}

function isBuiltStep(value: unknown): value is BuiltStep {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as BuiltStep).key === "string" &&
    typeof (value as BuiltStep).stepName === "string" &&
    pulumi.Output.isInstance((value as BuiltStep).result)
  );
}

/** The build steps an image module exports, directly or as fields of an exported object (a composite image). */
function builtSteps(exports: Record<string, unknown>): BuiltStep[] {
  const found = new Map<string, BuiltStep>();
  for (const value of Object.values(exports)) {
    const candidates = isBuiltStep(value)
      ? [value]
      : typeof value === "object" && value !== null
        ? Object.values(value).filter(isBuiltStep)
        : [];
    for (const step of candidates) found.set(step.stepName, step);
  }
  return [...found.values()];
}
