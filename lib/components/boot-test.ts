import * as pulumi from "@pulumi/pulumi";
import { ImageMetadata } from "../metadata/schema";
import { bootTestScriptFiles, bootTestStep, TEST_SCRIPT_ROLE } from "../steps/boot-test";
import { BuiltStep, StepComponent } from "./step-command";

export interface BootTestArgs {
  /** The disk to boot (a `Qcow2Disk`); it is never modified: the VM writes to a throwaway overlay. */
  disk: BuiltStep;
  /** The image's own test script, copied into the VM and run as the login user after the standard checks. @default none */
  testScript?: string;
  /** Seconds from QEMU's start until SSH must answer; sized for TCG on 2 cores. @default 120 */
  timeout?: number;
  /** Seconds test.sh may run. @default 600 */
  testTimeout?: number;
  /** Memory of the VM in MiB. @default 1024 */
  memory?: number;
  /** Virtual CPUs. @default 2 */
  cpus?: number;
  /** NICs the VM gets (NIC 0 is the management NIC with DHCP); each must appear in the guest, in order. @default 1 */
  nics?: number;
  /** systemd units that must be active once the VM has booted. @default [] */
  services?: string[];
  /** Expected host name. @default the image's (from its Rootfs) */
  hostname?: string;
  /** Login user. @default the image's (from its Rootfs), else "antidote" */
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
  "memory" | "cpus" | "nics" | "services" | "user" | "password" | "timeout" | "accelerator"
> {
  return {
    memory: metadata.resources.memoryMiB,
    cpus: metadata.resources.cpus,
    nics: metadata.interfaces.length,
    services: metadata.services,
    user: metadata.credentials.username,
    password: metadata.credentials.password,
    timeout: metadata.boot?.timeoutSeconds,
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
    this.buildStep(name, {
      step: bootTestStep,
      image: args.image ?? name,
      args: {
        memoryMiB: args.memory ?? 1024,
        cpus: args.cpus ?? 2,
        nics: args.nics ?? 1,
        services: args.services ?? [],
        ...(args.hostname ? { hostname: args.hostname } : {}),
        ...(args.user ? { user: args.user } : {}),
        password: args.password ?? "antidotepassword",
        sshTimeoutSeconds: args.timeout ?? 120,
        testTimeoutSeconds: args.testTimeout ?? 600,
        accelerator: args.accelerator ?? "auto",
        firmware: args.firmware ?? "bios",
      },
      files: {
        ...bootTestScriptFiles(),
        ...(args.testScript ? { [TEST_SCRIPT_ROLE]: args.testScript } : {}),
      },
      parents: { disk: args.disk },
    });
    this.registerStepOutputs();
  }
}
