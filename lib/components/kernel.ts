import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ConfigBase } from "../steps/kernel/config";
import { Json } from "../keys";
import { fragmentRole, KernelStepArgs, kernelStep } from "../steps/kernel";
import { StepArgsError } from "../steps/step";
import { StepComponent } from "./step-command";

/** The project's `kernel/` directory, where the standard fragments live. */
export const KERNEL_FRAGMENT_DIR = path.resolve(__dirname, "..", "..", "kernel");

/** The standard fragments, in merge order (see kernel/README.md for what each is for). */
export const DEFAULT_KERNEL_FRAGMENTS: readonly string[] = [
  "platform.config",
  "virtio.config",
  "filesystems.config",
  "systemd.config",
  "network.config",
  "netfilter.config",
].map((name) => path.join(KERNEL_FRAGMENT_DIR, name));

export interface KernelArgs {
  /**
   * Config fragments (paths, absolute or relative to the project directory), merged in order onto the base; a later
   * fragment overrides an earlier one. Every option they ask for must end up in the final config, or the build
   * fails. To add to the standard set, spread it: `[...DEFAULT_KERNEL_FRAGMENTS, "kernel/extra.config"]`.
   * @default DEFAULT_KERNEL_FRAGMENTS (kernel/platform, virtio, filesystems, systemd, network, netfilter)
   */
  fragments?: string[];
  /**
   * Configuration the fragments are merged onto.
   * @default "allnoconfig"
   */
  base?: ConfigBase;
  /**
   * Debian kernel source package.
   * @default "linux-source-6.1" (bookworm's kernel)
   */
  sourcePackage?: string;
  /**
   * Exact Debian version of the source package; part of the key, so a new Debian kernel (a security update)
   * rebuilds the kernel. Pin it for reproducible builds.
   * @default the version apt would install now (`apt-cache policy`), else the installed one
   */
  sourceVersion?: string;
  /**
   * Suffix of the kernel release (`uname -r` = `6.1.192` + this), also in the Debian package name.
   * @default "-antidote"
   */
  localVersion?: string;
  /**
   * Image the step belongs to, for messages and records.
   * @default the component's name
   */
  image?: string;
}

/**
 * A minimal Linux kernel built from the distribution's own kernel source: base config + fragments, checked, compiled
 * once per distinct set of inputs (two images with the same kernel args share one build). Its artifact holds
 * `vmlinuz`, `config`, `System.map` and the `linux-image-*.deb`.
 */
export class Kernel extends StepComponent {
  constructor(name: string, args: KernelArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    super("antidote:images:Kernel", name, {}, opts);
    const inputs = kernelStepInputs(name, args);
    this.buildStep(name, { step: kernelStep, image: args.image ?? name, ...inputs });
    this.registerStepOutputs();
  }
}

/**
 * The `kernel` step's arguments and input files for `args`: what {@link Kernel} keys and builds. Pulumi-free, so
 * tests and benchmarks build exactly the kernel a component would. Throws a message naming the component and the
 * field for a bad argument or a missing fragment.
 */
export function kernelStepInputs(
  name: string,
  args: KernelArgs,
): { args: KernelStepArgs & Record<string, Json>; files: Record<string, string> } {
  const fail = (field: string, message: string): never => {
    throw new Error(`Kernel ${name}: ${field}: ${message}`);
  };
  const fragments = args.fragments ?? [...DEFAULT_KERNEL_FRAGMENTS];
  const files: Record<string, string> = {};
  for (const fragment of fragments) {
    const role = fragmentRole(path.basename(fragment));
    if (files[role])
      fail("fragments", `two fragments are named ${path.basename(fragment)}: ${files[role]}, ${fragment}`);
    if (!fs.existsSync(fragment)) fail("fragments", `${fragment} does not exist`);
    files[role] = fragment;
  }
  const sourcePackage = args.sourcePackage ?? "linux-source-6.1";
  const stepArgs = {
    sourcePackage,
    sourceVersion: args.sourceVersion ?? availableVersion(sourcePackage, name),
    base: args.base ?? "allnoconfig",
    fragments: fragments.map((f) => path.basename(f)),
    localVersion: args.localVersion ?? "-antidote",
  };
  try {
    kernelStep.parseArgs(stepArgs);
  } catch (err) {
    if (err instanceof StepArgsError) throw new Error(`Kernel ${name}: ${err.message}`);
    throw err;
  }
  return { args: stepArgs, files };
}

/**
 * The version of `pkg` that `apt-get download` would fetch now (apt's candidate), else the installed one: read when
 * the program runs, so the key follows the Debian archive.
 */
export function availableVersion(pkg: string, component: string): string {
  const run = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    } catch {
      return "";
    }
  };
  const candidate = /^\s*Candidate:\s*(\S+)/m.exec(run("apt-cache", ["policy", pkg]))?.[1];
  if (candidate && candidate !== "(none)") return candidate;
  const installed = run("dpkg-query", ["-W", "-f=${Version}", pkg]).trim();
  if (installed) return installed;
  throw new Error(
    `Kernel ${component}: sourceVersion: apt knows no version of ${pkg} (run apt-get update, or set sourceVersion)`,
  );
}
