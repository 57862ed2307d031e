import { Json } from "../../keys";
import { argsObject, StepArgsError } from "../step";
import { CONFIG_BASES, ConfigBase } from "./config";

/** Arguments of the `kernel` step: everything that decides what is built, so all of it is in the key. */
export interface KernelStepArgs {
  /** Debian source package, e.g. `linux-source-6.1`. */
  sourcePackage: string;
  /** Its exact Debian version, e.g. `6.1.192-2`. */
  sourceVersion: string;
  /** Configuration the fragments are merged onto. */
  base: ConfigBase;
  /** Fragment names in merge order (a later fragment overrides an earlier one); each is the input file with role `fragment/<name>`. */
  fragments: string[];
  /** Appended to the kernel release (`6.1.192` + `-antidote`), so `uname -r` names the build. */
  localVersion: string;
}

/** Input-file role of a fragment. */
export function fragmentRole(name: string): string {
  return `fragment/${name}`;
}

const PACKAGE = /^linux-source-\d+\.\d+$/;
// Debian policy: a version starts with a digit and holds alphanumerics and . + ~ - (and : after an epoch).
const DEBIAN_VERSION = /^(\d+:)?\d[A-Za-z0-9.+~-]*$/;
const FRAGMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\.config$/;
// Part of the release, the /lib/modules directory and the Debian package name: lowercase, no spaces.
const LOCAL_VERSION = /^-[a-z0-9][a-z0-9.+-]*$/;

export function parseKernelArgs(raw: Json): KernelStepArgs {
  const args = argsObject(raw);
  const text = (field: string, pattern: RegExp, expected: string): string => {
    const value = args[field];
    if (typeof value !== "string" || !pattern.test(value)) throw new StepArgsError(field, expected, value);
    return value;
  };
  const sourcePackage = text(
    "sourcePackage",
    PACKAGE,
    "a Debian kernel source package like linux-source-6.1",
  );
  const sourceVersion = text("sourceVersion", DEBIAN_VERSION, "a Debian package version like 6.1.192-2");
  const base = args.base;
  if (typeof base !== "string" || !(CONFIG_BASES as readonly string[]).includes(base)) {
    throw new StepArgsError("base", `one of ${CONFIG_BASES.join(", ")}`, base);
  }
  const fragments = args.fragments;
  if (!Array.isArray(fragments) || fragments.length === 0) {
    throw new StepArgsError("fragments", "a non-empty list of fragment names", fragments);
  }
  fragments.forEach((name, i) => {
    if (typeof name !== "string" || !FRAGMENT_NAME.test(name)) {
      throw new StepArgsError(`fragments[${i}]`, "a file name ending in .config", name);
    }
    if (fragments.indexOf(name) !== i) {
      throw new StepArgsError(`fragments[${i}]`, "a name not already in the list", name);
    }
  });
  const localVersion = text(
    "localVersion",
    LOCAL_VERSION,
    "a lowercase suffix starting with '-', like -antidote",
  );
  return {
    sourcePackage,
    sourceVersion,
    base: base as ConfigBase,
    fragments: fragments as string[],
    localVersion,
  };
}
