import { ChildProcess } from "child_process";
import * as fs from "fs";
import * as net from "net";
import { killGroup, spawnChild } from "../exec";

export type Accelerator = "kvm" | "tcg";
export type Firmware = "bios" | "uefi";

/** OVMF from Debian's `ovmf` package: read-only code, and a variables template each VM gets a copy of. */
export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

export interface VmConfig {
  /** The disk QEMU writes to: a throwaway overlay, never the tested image. */
  disk: string;
  memoryMiB: number;
  cpus: number;
  /** Number of NICs; NIC 0 is user-mode networking with SSH forwarded, the others are isolated user nets. */
  nics: number;
  /** Host port (on 127.0.0.1) forwarded to the guest's port 22. */
  sshPort: number;
  /** File the serial console is written to from the first byte. */
  console: string;
  accelerator: Accelerator;
  firmware: Firmware;
  /** Writable copy of OVMF's variables, for `firmware: "uefi"`. */
  uefiVars?: string;
  /** A lesson directory exported read-only over virtio-9p as the container does (LESSON_TAG). @default none */
  lessonDir?: string;
  /** The host name antidote-configure applies the section of (`hosts.NAME`), passed as the container does. */
  lessonHost?: string;
}

/** The virtio-9p tag of the lesson directory; the guest's antidote-configure.service mounts it (docs/lessons.md). */
export const LESSON_TAG = "antidote";

/** SMBIOS system serial that names the lesson host to antidote-configure (as the launcher's `-smbios` does). */
export function lessonHostSerial(host: string): string {
  return `antidote-host:${host}`;
}

/** MAC address of NIC `index`: fixed, so checks (and lessons) can find each NIC by it. */
export function nicMac(index: number): string {
  return `52:54:00:a1:00:${index.toString(16).padStart(2, "0")}`;
}

/** First PCI slot of the NICs; slots in order make the guest's eth0, eth1... follow the declared order. */
const NIC_SLOT = 0x10;

/** The QEMU command line. Pure, so the unit tests can read it. */
export function qemuArgs(vm: VmConfig): string[] {
  const args = [
    "-nodefaults",
    "-machine",
    "pc",
    ...(vm.accelerator === "kvm"
      ? ["-accel", "kvm", "-cpu", "host"]
      : ["-accel", "tcg,thread=multi", "-cpu", "max"]),
    "-m",
    String(vm.memoryMiB),
    "-smp",
    String(vm.cpus),
    "-display",
    "none",
    "-monitor",
    "none",
    // Exit instead of rebooting, so a kernel panic (panic=N) or a reboot ends the run instead of looping.
    "-no-reboot",
    "-chardev",
    `file,id=console,path=${vm.console}`,
    "-serial",
    "chardev:console",
    "-drive",
    `file=${vm.disk},format=qcow2,if=virtio,cache=unsafe,discard=unmap`,
    // Entropy for the guest's first-boot ssh-keygen, which can otherwise wait under TCG.
    "-device",
    "virtio-rng-pci",
  ];
  if (vm.firmware === "uefi") {
    if (!vm.uefiVars) throw new Error("UEFI boot needs a writable copy of the OVMF variables (uefiVars)");
    args.push(
      "-drive",
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      "-drive",
      `if=pflash,format=raw,unit=1,file=${vm.uefiVars}`,
    );
  }
  if (vm.lessonDir !== undefined) {
    args.push(
      "-fsdev",
      `local,id=lesson,path=${vm.lessonDir},security_model=none,readonly=on`,
      "-device",
      `virtio-9p-pci,fsdev=lesson,mount_tag=${LESSON_TAG}`,
    );
  }
  if (vm.lessonHost !== undefined) args.push("-smbios", `type=1,serial=${lessonHostSerial(vm.lessonHost)}`);
  for (let i = 0; i < vm.nics; i++) {
    // restrict=on: the guest reaches nothing outside (the lab rule); the host forward still works.
    const forward = i === 0 ? `,hostfwd=tcp:127.0.0.1:${vm.sshPort}-:22` : "";
    args.push(
      "-netdev",
      `user,id=net${i},restrict=on${forward}`,
      "-device",
      `virtio-net-pci,netdev=net${i},mac=${nicMac(i)},addr=0x${(NIC_SLOT + i).toString(16)}`,
    );
  }
  return args;
}

/** A free TCP port on 127.0.0.1 (the kernel picks it; a small race with other processes remains, see `startVm`). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running QEMU, in its own process group so stopping it takes everything it started along. */
export class RunningVm {
  readonly exited: Promise<VmExit>;
  private exit?: VmExit;

  constructor(
    private readonly child: ChildProcess,
    readonly config: VmConfig,
    /** Where QEMU's own messages (stderr) go. */
    readonly qemuLog: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** How QEMU ended, once it has. */
  get exitStatus(): VmExit | undefined {
    return this.exit;
  }

  /** Stops QEMU (SIGTERM, SIGKILL after a grace period) and waits until it is gone. */
  async stop(): Promise<void> {
    if (this.exit || this.child.pid === undefined) return;
    // What QEMU left in its group is killed when it exits (spawnChild).
    killGroup(this.child.pid, "SIGTERM", 3000);
    await this.exited;
  }
}

/**
 * Starts QEMU in its own process group, output to `qemuLog`, never to the caller's stdio (an orphan
 * holding the test runner's pipe hangs CI). The caller must `stop()` it on every path.
 */
export function startVm(config: VmConfig, qemuLog: string): RunningVm {
  const fd = fs.openSync(qemuLog, "a");
  try {
    // Dies with this process, even when it is SIGKILLed (the reaper of lib/exec.ts), so no VM is orphaned.
    const child = spawnChild("qemu-system-x86_64", qemuArgs(config), { stdio: ["ignore", fd, fd] });
    return new RunningVm(child, config, qemuLog);
  } finally {
    fs.closeSync(fd);
  }
}
