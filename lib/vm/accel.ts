import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { killGroup, ownScratch, spawnChild } from "../exec";
import { GRUB_LIB, installBiosBootCode } from "./grub";
import { Accelerator } from "./qemu";

export interface AcceleratorChoice {
  accelerator: Accelerator;
  /** Why: what the probe saw, or that it was asked for. */
  reason: string;
}

export interface KvmVerdict {
  usable: boolean;
  reason: string;
  /** Host kernel and QEMU the verdict holds for. */
  host: string;
  probedAt: string;
}

const PROBE_MESSAGE = "antidote-kvm-probe-ok";
/** Long enough for firmware + GRUB under a working KVM (well under a second); a hang shows as silence. */
const PROBE_TIMEOUT_MS = 10_000;

/**
 * Picks KVM or TCG. `/dev/kvm` can exist and still hang guests (nested virtualization without the features a guest
 * needs), so KVM is used only when a probe VM — SeaBIOS, then GRUB with a timer sleep, printing to the serial
 * console and powering off — finishes under KVM with the same CPU options a real boot uses. The verdict is kept in
 * `cacheDir` per host kernel and QEMU version, so the probe runs once per machine.
 */
export async function chooseAccelerator(
  requested: "auto" | Accelerator,
  cacheDir: string | undefined,
): Promise<AcceleratorChoice> {
  if (requested === "tcg") return { accelerator: "tcg", reason: "TCG was asked for" };
  const verdict = await kvmVerdict(cacheDir);
  if (requested === "kvm") {
    if (!verdict.usable) throw new Error(`KVM was asked for but is not usable: ${verdict.reason}`);
    return { accelerator: "kvm", reason: "KVM was asked for" };
  }
  return verdict.usable
    ? { accelerator: "kvm", reason: `KVM probe passed (${verdict.reason})` }
    : { accelerator: "tcg", reason: `KVM not usable: ${verdict.reason}` };
}

export async function kvmVerdict(cacheDir?: string): Promise<KvmVerdict> {
  const host = `${os.release()} ${qemuVersion()}`;
  const cached = cacheDir ? path.join(cacheDir, "kvm-probe.json") : undefined;
  if (cached && fs.existsSync(cached)) {
    const verdict = JSON.parse(fs.readFileSync(cached, "utf8")) as KvmVerdict;
    if (verdict.host === host) return verdict;
  }
  const verdict: KvmVerdict = { ...(await probeKvm()), host, probedAt: new Date().toISOString() };
  if (cached) {
    const tmp = `${cached}.${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(verdict, null, 2) + "\n");
    fs.renameSync(tmp, cached);
  }
  return verdict;
}

function qemuVersion(): string {
  return execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" }).split("\n")[0];
}

async function probeKvm(): Promise<{ usable: boolean; reason: string }> {
  try {
    fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { usable: false, reason: "/dev/kvm is missing or not accessible" };
  }
  const probe = await bootProbeVm(["-accel", "kvm", "-cpu", "host"]);
  if (probe.passed) return { usable: true, reason: `probe VM booted in ${probe.ms} ms` };
  return {
    usable: false,
    reason: probe.timedOut
      ? `a probe VM under KVM printed nothing within ${PROBE_TIMEOUT_MS / 1000} s (guests hang)`
      : `QEMU failed under KVM (${probe.qemuSaid || `exit ${probe.code}`})`,
  };
}

export interface ProbeResult {
  /** The probe VM printed its message: firmware, GRUB and timers ran. */
  passed: boolean;
  timedOut: boolean;
  code: number | null;
  ms: number;
  /** QEMU's last words. */
  qemuSaid: string;
}

/** Boots the probe VM (a 1 MiB disk with only GRUB's boot code) with the given accelerator options. */
export async function bootProbeVm(accelArgs: string[]): Promise<ProbeResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "antidote-kvm-probe-"));
  const removeDir = ownScratch(dir);
  try {
    const disk = path.join(dir, "probe.raw");
    const console = path.join(dir, "console.log");
    const config = path.join(dir, "probe.cfg");
    fs.writeFileSync(
      config,
      [
        "serial --unit=0 --speed=115200",
        "terminal_output serial",
        "sleep 1",
        `echo ${PROBE_MESSAGE}`,
        "halt",
        "",
      ].join("\n"),
    );
    const core = path.join(dir, "core.img");
    execFileSync("grub-mkimage", [
      "-O",
      "i386-pc",
      "-d",
      `${GRUB_LIB}/i386-pc`,
      "-o",
      core,
      "-p",
      "/",
      "-c",
      config,
      "serial",
      "terminal",
      "echo",
      "sleep",
      "halt",
    ]);
    fs.writeFileSync(disk, Buffer.alloc(1024 * 1024));
    installBiosBootCode(
      disk,
      fs.readFileSync(path.join(GRUB_LIB, "i386-pc", "boot.img")),
      fs.readFileSync(core),
      1,
    );
    const started = Date.now();
    const result = await runProbe(
      [
        "-nodefaults",
        ...accelArgs,
        "-m",
        "64",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-serial",
        `file:${console}`,
        "-drive",
        `file=${disk},format=raw,if=virtio`,
      ],
      path.join(dir, "qemu.log"),
    );
    const passed = fs.existsSync(console) && fs.readFileSync(console, "utf8").includes(PROBE_MESSAGE);
    const qemuSaid = fs
      .readFileSync(path.join(dir, "qemu.log"), "utf8")
      .trim()
      .split("\n")
      .slice(-2)
      .join(" | ");
    return { passed, ...result, ms: Date.now() - started, qemuSaid };
  } finally {
    removeDir();
  }
}

function runProbe(args: string[], logFile: string): Promise<{ timedOut: boolean; code: number | null }> {
  const fd = fs.openSync(logFile, "w");
  const child = spawnChild("qemu-system-x86_64", args, { stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  return new Promise((resolve) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid, "SIGKILL");
    }, PROBE_TIMEOUT_MS);
    child.on("error", () => undefined);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ timedOut, code });
    });
  });
}
