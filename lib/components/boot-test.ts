import * as pulumi from "@pulumi/pulumi";
import { LAB_LOGIN } from "../lab-login";
import { ImageMetadata } from "../metadata/schema";
import {
  bootTestScriptFiles,
  bootTestStep,
  BootTestArgs as BootTestStepArgs,
  TEST_SCRIPT_ROLE,
} from "../steps/boot-test";
import { RootfsStepArgs } from "../steps/rootfs";
import { rejectRenamedOptions } from "./renamed-options";
import { BuiltStep, StepComponent } from "./step-command";

export interface BootTestArgs {
  /** The disk to boot (a `Qcow2Disk`); it is never modified: the VM writes to a throwaway overlay. */
  disk: BuiltStep;
  /** The image's own test script, copied into the VM and run as the login user after the standard checks. @default none */
  testScript?: string;
  /** Seconds from QEMU's start until SSH must answer; sized for TCG on 2 cores. @default 120 */
  sshTimeoutSeconds?: number;
  /** Seconds test.sh may run. @default 600 */
  testTimeoutSeconds?: number;
  /** Seconds the failed-units check waits for systemd to finish booting. @default 60 */
  settleSeconds?: number;
  /** Memory of the VM. @default 1024 */
  memoryMiB?: number;
  /** Virtual CPUs. @default 2 */
  cpus?: number;
  /** NICs the VM gets (NIC 0 is the management NIC with DHCP); each must appear in the guest, in order. @default 1 */
  nics?: number;
  /** systemd units that must be active once the VM has booted. @default [] */
  services?: string[];
  /** Expected host name. @default the disk's Rootfs's; for an imported disk, any name but "localhost" */
  hostname?: string;
  /** Login user. @default the disk's Rootfs's user, else "antidote" */
  user?: string;
  /** The user's password (recorded in state: use the lab's well-known default or a test-only one). @default "antidotepassword" */
  password?: string;
  /** "auto" uses KVM only when a probe shows it works here, else TCG. @default "auto" */
  accelerator?: "auto" | "kvm" | "tcg";
  /** Firmware to boot through. @default "bios" */
  firmware?: "bios" | "uefi";
  /** Image the test belongs to. @default the component's name */
  image?: string;
}

/**
 * What an image's metadata says about its boot test: login, resources, NICs, services, the boot-time budget and
 * KVM when the image requires it (else KVM when it works here, TCG otherwise).
 */
export function bootTestArgsFromMetadata(
  metadata: ImageMetadata,
): Pick<
  BootTestArgs,
  "memoryMiB" | "cpus" | "nics" | "services" | "user" | "password" | "sshTimeoutSeconds" | "accelerator"
> {
  return {
    memoryMiB: metadata.resources.memoryMiB,
    cpus: metadata.resources.cpus,
    nics: metadata.interfaces.length,
    services: metadata.services,
    user: metadata.credentials.username,
    password: metadata.credentials.password,
    sshTimeoutSeconds: metadata.boot?.timeoutSeconds,
    accelerator: metadata.boot?.requiresKvm ? "kvm" : undefined,
  };
}

/**
 * Boots a disk under QEMU through firmware and GRUB, waits for SSH, runs the standard checks (login, sudo, host
 * name, network, NICs, services, failed units) and the image's test.sh. Its artifact is `report.json`, `junit.xml`
 * and `console.log`; a failed check fails the step with the console's last lines. Only a passing test lets the
 * image be published.
 */
export class BootTest extends StepComponent {
  constructor(name: string, args: BootTestArgs, opts?: pulumi.ComponentResourceOptions) {
    super("antidote:images:BootTest", name, {}, opts);
    const image = args.image ?? name;
    rejectRenamedOptions(`${image}: BootTest ${name}`, args, {
      memory: { now: "memoryMiB", unit: "MiB" },
      timeout: { now: "sshTimeoutSeconds", unit: "seconds" },
      testTimeout: { now: "testTimeoutSeconds", unit: "seconds" },
    });
    const stepArgs = bootTestStepArgs(args, diskRootfsArgs(args.disk));
    this.buildStep(name, {
      step: bootTestStep,
      image,
      args: { ...stepArgs },
      files: {
        ...bootTestScriptFiles(),
        ...(args.testScript ? { [TEST_SCRIPT_ROLE]: args.testScript } : {}),
      },
      parents: { disk: args.disk },
    });
    this.registerStepOutputs();
  }
}

/**
 * The boot-test step's complete arguments for `args`, every default filled in here (Pulumi-free, so tests and
 * benchmarks boot exactly what the component would). `rootfs`: the arguments of the Rootfs the disk was built from.
 */
export function bootTestStepArgs(
  args: Omit<BootTestArgs, "disk" | "testScript" | "image">,
  rootfs?: RootfsStepArgs,
): BootTestStepArgs {
  return {
    memoryMiB: args.memoryMiB ?? 1024,
    cpus: args.cpus ?? 2,
    nics: args.nics ?? 1,
    services: args.services ?? [],
    hostname: args.hostname ?? rootfs?.hostname ?? null,
    user: args.user ?? rootfs?.user.name ?? LAB_LOGIN.username,
    password: args.password ?? LAB_LOGIN.password,
    sshTimeoutSeconds: args.sshTimeoutSeconds ?? 120,
    testTimeoutSeconds: args.testTimeoutSeconds ?? 600,
    settleSeconds: args.settleSeconds ?? 60,
    accelerator: args.accelerator ?? "auto",
    firmware: args.firmware ?? "bios",
  };
}

/** The arguments of the Rootfs a built disk was made from (none for an imported disk). */
function diskRootfsArgs(disk: BuiltStep): RootfsStepArgs | undefined {
  const rootfsKey = disk.spec.parents.rootfs;
  return rootfsKey ? (disk.ancestors[rootfsKey]?.args as unknown as RootfsStepArgs) : undefined;
}
