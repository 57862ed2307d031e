import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ownScratch, spawnChild } from "../exec";
import { loadMetadata } from "../metadata/metadata";
import { ProgressDisplay } from "../runner/progress";
import { runProgram } from "../runner/local-runner";
import { findProjectRoot, stackStore } from "../runner/stack";
import { chooseAccelerator } from "../vm/accel";
import { freePort, RunningVm, startVm } from "../vm/qemu";
import { SSH_OPTIONS, sshRun, SshTarget } from "../vm/ssh";
import { parseArgs, UsageError } from "./args";

export const vmHelp = `usage: antidote-images vm <image> [--stack S] [--command CMD] [--timeout SECONDS]

Builds the image (as 'up <image>' does), boots its disk on a throwaway overlay with the NICs and resources its
metadata.yaml declares, shows the serial console until SSH answers, then logs you in over SSH with the image's
credentials. Leaving the SSH session stops the VM; the disk is never modified.

options:
  --stack S          stack whose config and store to use          default: local
  --command CMD      run CMD over SSH instead of a login shell; exits with its status
  --timeout SECONDS  how long to wait for SSH                      default: 180`;

export async function vmCommand(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv, ["stack", "command", "timeout"]);
  if (flags.help) {
    console.log(vmHelp);
    return 0;
  }
  if (positional.length !== 1) throw new UsageError("name one image");
  const [image] = positional;
  const timeoutS = flags.timeout === undefined ? 180 : Number(flags.timeout);
  if (!(timeoutS > 0))
    throw new UsageError(`--timeout must be a positive number of seconds, got '${flags.timeout}'`);
  const root = findProjectRoot();
  const stack = typeof flags.stack === "string" ? flags.stack : "local";

  const display = new ProgressDisplay();
  const report = await runProgram({ root, stack, mode: "up", images: [image], onEvent: display.onEvent });
  display.finish(report);
  const disk = report.steps.find((s) => s.image === image && (s.kind === "disk" || s.kind === "disk-import"));
  if (!disk?.result) {
    throw new Error(
      `${image}: no disk to boot (${disk ? `its disk step ${disk.status}` : "the image has no disk step"})`,
    );
  }
  const metadata = loadMetadata(path.join(root, "images", image));
  const target: SshTarget = {
    port: await freePort(),
    user: metadata.credentials.username,
    password: metadata.credentials.password,
  };
  const store = stackStore(root, stack);
  const accel = await chooseAccelerator("auto", store.cacheDir("kvm-probe"));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `antidote-vm-${image}-`));
  const removeWork = ownScratch(work);
  const overlay = path.join(work, "overlay.qcow2");
  const consoleLog = path.join(work, "console.log");
  const created = spawnSync("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-b",
    disk.result.primary,
    "-F",
    "qcow2",
    overlay,
  ]);
  if (created.status !== 0)
    throw new Error(`${image}: qemu-img could not make an overlay: ${created.stderr}`);

  process.stderr.write(
    `\n${image}: booting ${disk.result.primary} (${accel.accelerator}: ${accel.reason})\n`,
  );
  const vm = startVm(
    {
      disk: overlay,
      memoryMiB: metadata.resources.memoryMiB,
      cpus: metadata.resources.cpus,
      nics: metadata.interfaces.length,
      sshPort: target.port,
      console: consoleLog,
      accelerator: accel.accelerator,
      firmware: "bios",
    },
    path.join(work, "qemu.log"),
  );
  const stop = () => void vm.stop();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const stopFollowing = follow(consoleLog, process.stderr);
  try {
    await waitForLogin(vm, target, timeoutS * 1000, image, consoleLog);
    stopFollowing();
    process.stderr.write(
      `\n${image}: up; ssh -p ${target.port} ${target.user}@127.0.0.1 (password ${target.password})\n`,
    );
    if (typeof flags.command === "string") {
      const run = await sshRun(target, flags.command, { timeoutMs: 600_000 });
      process.stdout.write(run.stdout);
      process.stderr.write(run.stderr);
      return run.status ?? 1;
    }
    return await interactiveSsh(target);
  } finally {
    stopFollowing();
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await vm.stop();
    removeWork();
  }
}

/** Copies what is appended to `file` to `out` until the returned function is called. */
function follow(file: string, out: NodeJS.WritableStream): () => void {
  let offset = 0;
  const timer = setInterval(() => {
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch {
      return;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= offset) return;
      const buffer = Buffer.alloc(size - offset);
      fs.readSync(fd, buffer, 0, buffer.length, offset);
      offset = size;
      out.write(buffer);
    } finally {
      fs.closeSync(fd);
    }
  }, 200);
  return () => clearInterval(timer);
}

async function waitForLogin(
  vm: RunningVm,
  target: SshTarget,
  timeoutMs: number,
  image: string,
  consoleLog: string,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (vm.exitStatus) throw new Error(`${image}: QEMU stopped before SSH answered (console: ${consoleLog})`);
    const probe = await sshRun(target, "true", { timeoutMs: 20_000 });
    if (probe.status === 0) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(`${image}: SSH did not answer within ${timeoutMs / 1000} s (console above)`);
}

function interactiveSsh(target: SshTarget): Promise<number> {
  return new Promise((resolve) => {
    // In the foreground: the terminal's job control and window size reach the session.
    const child = spawnChild(
      "sshpass",
      ["-e", "ssh", ...SSH_OPTIONS, "-t", "-p", String(target.port), `${target.user}@127.0.0.1`],
      { stdio: "inherit", env: { ...process.env, SSHPASS: target.password }, foreground: true },
    );
    child.on("close", (code) => resolve(code ?? 1));
  });
}
