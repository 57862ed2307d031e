import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { launcherScriptFiles, launcherStep, LauncherStepArgs } from "../steps/launcher";
import { Rootfs, RootfsArgs } from "./rootfs";
import { StepComponent } from "./step-command";

/**
 * What the launch script runs, without recommends: QEMU for x86 (SeaBIOS comes with it), qemu-img for the overlay,
 * tini as PID 1, sshpass + the SSH client for the health check's login, and socat to relay forwarded ports from the
 * container's addresses to QEMU's loopback forwards. iproute2 (ip, tc) is in every Rootfs.
 */
export const LAUNCHER_PACKAGES: readonly string[] = [
  "qemu-system-x86",
  "qemu-utils",
  "tini",
  "sshpass",
  "openssh-client",
  "socat",
  // Satisfies init-system-helpers' "usrmerge | usr-is-merged" without usrmerge, which brings all of Perl.
  "usr-is-merged",
];

export interface LauncherArgs {
  /** Debian packages beyond {@link LAUNCHER_PACKAGES}. @default [] */
  packages?: string[];
  /** Local Docker repository the base image is tagged in (the tag is its key). @default "antidote-images/launcher" */
  repository?: string;
  /** Further Rootfs settings (suite, mirror, archive state…). @default {} */
  rootfs?: Omit<RootfsArgs, "packages" | "image" | "base">;
}

/** The launcher's Rootfs arguments (Pulumi-free, so tests and benchmarks build the very same rootfs). */
export function launcherRootfsArgs(name: string, args: LauncherArgs = {}): RootfsArgs {
  return {
    ...args.rootfs,
    image: name,
    hostname: name,
    packages: [...LAUNCHER_PACKAGES, ...(args.packages ?? [])],
    post: [...(args.rootfs?.post ?? []), path.join(__dirname, "..", "scripts", "launcher", "trim.sh")],
  };
}

/** The launcher step's arguments. */
export function launcherStepArgs(args: LauncherArgs = {}): LauncherStepArgs {
  return { repository: args.repository ?? "antidote-images/launcher" };
}

/**
 * The launcher base image every lab image builds `FROM`: a Rootfs with QEMU and the launch script, imported into
 * dockerd as a single `FROM scratch` layer (nothing is pulled from a registry). Build it once per program with
 * {@link sharedLauncher} so every lab image shares the layer.
 */
export class Launcher extends StepComponent {
  readonly rootfs: Rootfs;

  constructor(name: string, args: LauncherArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    super("antidote:images:Launcher", name, {}, opts);
    this.rootfs = new Rootfs(`${name}-rootfs`, launcherRootfsArgs(name, args), { parent: this });
    this.buildStep(name, {
      step: launcherStep,
      image: name,
      args: { ...launcherStepArgs(args) },
      files: launcherScriptFiles(),
      parents: { rootfs: this.rootfs },
    });
    this.registerStepOutputs();
  }
}

let shared: Launcher | undefined;

/** The one launcher of this program run, created on first use. */
export function sharedLauncher(): Launcher {
  shared ??= new Launcher("launcher");
  return shared;
}
