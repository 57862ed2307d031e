import * as fs from "fs";
import * as path from "path";
import { Json } from "../keys";
import { chooseAccelerator } from "../vm/accel";
import { Accelerator, Firmware, freePort, nicMac, OVMF_VARS, RunningVm, startVm, VmConfig } from "../vm/qemu";
import { SshTarget, sshBanner, sshRun, SSHPASS_WRONG_PASSWORD } from "../vm/ssh";
import { ImageInfo } from "./disk";
import { tailOfFile } from "./log";
import { argsObject, StepArgsError, StepContext, StepDefinition } from "./step";

export interface BootTestArgs {
  memoryMiB: number;
  cpus: number;
  /** NICs the VM gets; every one must show up in the guest, in order. */
  nics: number;
  /** systemd units that must be active. */
  services: string[];
  /** Expected host name; null: any name but "localhost" (a disk whose rootfs the program does not know). */
  hostname: string | null;
  user: string;
  password: string;
  /** Deadline for the first SSH answer, from QEMU's start. */
  sshTimeoutSeconds: number;
  /** Deadline for the image's test.sh. */
  testTimeoutSeconds: number;
  /** How long the failed-units check waits for systemd to finish booting. */
  settleSeconds: number;
  accelerator: "auto" | Accelerator;
  firmware: Firmware;
}

/** Input roles: the checks script (so editing it re-tests every image) and the image's own test script. */
export const CHECKS_ROLE = "boot-test/checks.sh";
export const TEST_SCRIPT_ROLE = "test.sh";

/** Role → path of the step's own scripts, for the component's (and tests') `files`. */
export function bootTestScriptFiles(): Record<string, string> {
  return { [CHECKS_ROLE]: path.join(__dirname, "..", "scripts", "boot-test", "checks.sh") };
}

export interface CheckResult {
  name: string;
  pass: boolean;
  durationMs: number;
  message: string;
}

/** `report.json`, the step's primary output. */
export interface BootTestReport {
  image: string;
  /** Key of the tested disk. */
  disk: string;
  passed: boolean;
  accelerator: Accelerator;
  acceleratorReason: string;
  firmware: Firmware;
  /** From QEMU's start to the guest's SSH banner; null when SSH never answered. */
  bootToSshMs: number | null;
  checks: CheckResult[];
  /** The image's test.sh: exit status and output (also in `test.log`). */
  test: { exitStatus: number | null; durationMs: number; output: string } | null;
  /** The serial console log (kept in the artifact as `console.log`, and next to the build log). */
  consoleLog: string;
}

const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;
const UNIT = /^[A-Za-z0-9@_.:-]+$/;
const USER = /^[a-z_][a-z0-9_-]*$/;
/** How much of test.sh's output the report keeps (all of it is in test.log). */
const REPORT_OUTPUT_CHARS = 16 * 1024;

function positiveInt(args: Record<string, Json>, field: string, max: number): number {
  const value = args[field];
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new StepArgsError(field, `a whole number from 1 to ${max}`, value);
  }
  return value;
}

function oneOf<T extends string>(args: Record<string, Json>, field: string, values: T[]): T {
  const value = args[field];
  if (typeof value !== "string" || !values.includes(value as T)) {
    throw new StepArgsError(field, `one of ${values.join(", ")}`, value);
  }
  return value as T;
}

function name(args: Record<string, Json>, field: string, pattern: RegExp): string {
  const value = args[field];
  if (typeof value !== "string" || !pattern.test(value))
    throw new StepArgsError(field, `a name (${pattern})`, value);
  return value;
}

/**
 * Boots a disk on a throwaway overlay through firmware and GRUB, as a learner's VM boots, waits for SSH and runs the
 * standard checks and the image's test.sh over SSH. Any failed check fails the step with the console's last lines.
 */
export const bootTestStep: StepDefinition<BootTestArgs> = {
  kind: "boot-test",
  version: 1,
  needs: ["kvm"],
  parseArgs(raw: Json): BootTestArgs {
    const args = argsObject(raw);
    const services = args.services;
    if (!Array.isArray(services)) throw new StepArgsError("services", "a list of systemd units", services);
    services.forEach((s, i) => {
      if (typeof s !== "string" || !UNIT.test(s))
        throw new StepArgsError(`services[${i}]`, "a systemd unit name", s);
    });
    const password = args.password;
    if (typeof password !== "string" || password === "") {
      throw new StepArgsError("password", "a non-empty string", password);
    }
    if (args.hostname === undefined) throw new StepArgsError("hostname", "a host name or null", undefined);
    return {
      memoryMiB: positiveInt(args, "memoryMiB", 65536),
      cpus: positiveInt(args, "cpus", 64),
      nics: positiveInt(args, "nics", 16),
      services: services as string[],
      hostname: args.hostname === null ? null : name(args, "hostname", HOSTNAME),
      user: name(args, "user", USER),
      password,
      sshTimeoutSeconds: positiveInt(args, "sshTimeoutSeconds", 3600),
      testTimeoutSeconds: positiveInt(args, "testTimeoutSeconds", 86400),
      settleSeconds: positiveInt(args, "settleSeconds", 3600),
      accelerator: oneOf(args, "accelerator", ["auto", "kvm", "tcg"]),
      firmware: oneOf(args, "firmware", ["bios", "uefi"]),
    };
  },
  run: runBootTest,
};

async function runBootTest(ctx: StepContext<BootTestArgs>) {
  const { args } = ctx;
  const disk = ctx.parents.disk;
  if (!disk) throw new Error("a boot test needs a 'disk' parent");
  const image = (disk.meta.outputs.image ?? {}) as ImageInfo;
  const checksScript = ctx.files[CHECKS_ROLE];
  if (!checksScript) throw new Error(`the step needs its '${CHECKS_ROLE}' input file`);
  // Next to the build log, so it survives a failed step (which leaves no artifact); copied into the artifact too.
  const consoleLog = ctx.log.path.replace(/\.log$/, "") + ".console.log";
  fs.writeFileSync(consoleLog, "");

  const accel = await chooseAccelerator(args.accelerator, ctx.store.cacheDir("kvm-probe"));
  ctx.log.progress(`${ctx.spec.image}: boot test: ${accel.accelerator} (${accel.reason})`);
  const overlay = path.join(ctx.work, "overlay.qcow2");
  await ctx.log.exec("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-b",
    path.join(disk.dir, disk.meta.primary),
    "-F",
    "qcow2",
    overlay,
  ]);
  let uefiVars: string | undefined;
  if (args.firmware === "uefi") {
    uefiVars = path.join(ctx.work, "OVMF_VARS.fd");
    fs.copyFileSync(OVMF_VARS, uefiVars);
  }
  const config = {
    disk: overlay,
    memoryMiB: args.memoryMiB,
    cpus: args.cpus,
    nics: args.nics,
    console: consoleLog,
    accelerator: accel.accelerator,
    firmware: args.firmware,
    uefiVars,
  };
  const qemuLog = path.join(ctx.work, "qemu.log");
  const report: BootTestReport = {
    image: ctx.spec.image,
    disk: disk.key,
    passed: false,
    accelerator: accel.accelerator,
    acceleratorReason: accel.reason,
    firmware: args.firmware,
    bootToSshMs: null,
    checks: [],
    test: null,
    consoleLog,
  };

  let vm: RunningVm | undefined;
  const stopOnAbort = () => void vm?.stop();
  ctx.signal.addEventListener("abort", stopOnAbort);
  try {
    const boot = await bootUntilSsh(ctx, config, qemuLog, (started) => (vm = started));
    report.checks.push(boot.check);
    report.bootToSshMs = boot.check.pass ? boot.check.durationMs : null;
    if (boot.check.pass) {
      const target: SshTarget = {
        port: boot.port,
        user: args.user,
        password: args.password,
      };
      await runChecks(ctx, target, image, report);
    }
  } finally {
    ctx.signal.removeEventListener("abort", stopOnAbort);
    await vm?.stop();
    if (fs.existsSync(qemuLog)) ctx.log.write(`# QEMU's messages:\n${fs.readFileSync(qemuLog, "utf8")}`);
  }
  ctx.signal.throwIfAborted();

  report.passed = report.checks.every((c) => c.pass);
  fs.copyFileSync(consoleLog, path.join(ctx.out, "console.log"));
  fs.writeFileSync(path.join(ctx.out, "report.json"), JSON.stringify(report, null, 2) + "\n");
  fs.writeFileSync(path.join(ctx.out, "junit.xml"), junitXml(report));
  for (const c of report.checks)
    ctx.log.write(`check ${c.name}: ${c.pass ? "pass" : "FAIL"} (${c.durationMs} ms) ${c.message}`);
  if (!report.passed) {
    // The step's output dir goes with its scratch space: a CI needs the JUnit report most when a check failed.
    const kept = ctx.log.path.replace(/\.log$/, "");
    fs.writeFileSync(`${kept}.report.json`, JSON.stringify(report, null, 2) + "\n");
    fs.writeFileSync(`${kept}.junit.xml`, junitXml(report));
    throw new Error(failureMessage(report));
  }
  ctx.log.progress(
    `${ctx.spec.image}: boot test passed: SSH after ${(report.bootToSshMs! / 1000).toFixed(1)} s (${accel.accelerator}), ` +
      `${report.checks.length} checks`,
  );
  return {
    primary: "report.json",
    outputs: {
      passed: true,
      accelerator: accel.accelerator,
      firmware: args.firmware,
      bootToSshMs: report.bootToSshMs,
      checks: report.checks.map((c) => `${c.name}: pass`),
    },
  };
}

/** Starts QEMU (again with another port if another process took the one picked) and waits for the SSH banner. */
async function bootUntilSsh(
  ctx: StepContext<BootTestArgs>,
  config: Omit<VmConfig, "sshPort">,
  qemuLog: string,
  onStart: (vm: RunningVm) => void,
): Promise<{ check: CheckResult; port: number }> {
  const deadlineMs = ctx.args.sshTimeoutSeconds * 1000;
  const promptGraceMs = Math.max(LOGIN_PROMPT_GRACE_MS, deadlineMs / 4);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    fs.writeFileSync(qemuLog, "");
    const started = Date.now();
    let loginPromptAt: number | undefined;
    const vm = startVm({ ...config, sshPort: port }, qemuLog);
    onStart(vm);
    const check = (pass: boolean, message: string): { check: CheckResult; port: number } => ({
      check: { name: "boot", pass, durationMs: Date.now() - started, message },
      port,
    });
    while (!ctx.signal.aborted) {
      if (vm.exitStatus) {
        const said = tailOfFile(qemuLog, 5);
        if (/host forwarding rule/.test(said) && attempt < 3) break;
        const how = vm.exitStatus.signal ? `killed by ${vm.exitStatus.signal}` : `exit ${vm.exitStatus.code}`;
        const panic = kernelPanic(config.console);
        return check(
          false,
          panic
            ? `the kernel panicked: ${panic}`
            : `QEMU stopped (${how}) before SSH answered${said ? `: ${said.replace(/\n/g, " | ")}` : ""}`,
        );
      }
      const panic = kernelPanic(config.console);
      if (panic) return check(false, `the kernel panicked: ${panic}`);
      loginPromptAt ??= hasLoginPrompt(config.console) ? Date.now() : undefined;
      if (loginPromptAt !== undefined && Date.now() - loginPromptAt > promptGraceMs) {
        return check(
          false,
          `the VM reached a login prompt on the console but SSH did not answer on 127.0.0.1:${port} ` +
            `(guest port 22) within ${promptGraceMs / 1000} s after it: sshd is not running or not listening`,
        );
      }
      if (Date.now() - started > deadlineMs) {
        return check(
          false,
          `no SSH answer on 127.0.0.1:${port} (guest port 22) within ${ctx.args.sshTimeoutSeconds} s ` +
            `(${config.accelerator}); see the console below for how far the boot got`,
        );
      }
      const banner = await sshBanner(port, 2000);
      if (banner) return check(true, `${banner} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, 250));
    }
    ctx.signal.throwIfAborted();
    await vm.stop();
  }
}

/**
 * The getty's prompt on the serial console comes when systemd has started the system: from then on SSH should answer
 * within seconds, so waiting for the full deadline would only delay the diagnosis. sshd may still be starting beside
 * the getty, though, and an image declared slower (a vendor system with a longer SSH budget) gets a share of its
 * budget: a quarter, at least this.
 */
const LOGIN_PROMPT_GRACE_MS = 30_000;

function hasLoginPrompt(consoleLog: string): boolean {
  return / login: *$/m.test(readableConsole(tailOfFile(consoleLog, 20)));
}

/** The panic line of the console, if the kernel panicked (a VM with panic=0 would otherwise sit until the deadline). */
function kernelPanic(consoleLog: string): string | undefined {
  const match = /Kernel panic - not syncing:[^\r\n]*/.exec(tailOfFile(consoleLog, 200));
  return match?.[0];
}

async function runChecks(
  ctx: StepContext<BootTestArgs>,
  target: SshTarget,
  image: ImageInfo,
  report: BootTestReport,
): Promise<void> {
  const { args, signal } = ctx;
  const login = await sshRun(target, "true", { timeoutMs: 60_000, signal });
  report.checks.push({
    name: "login",
    pass: login.status === 0,
    durationMs: login.durationMs,
    message:
      login.status === 0
        ? `password login as ${target.user}`
        : login.status === SSHPASS_WRONG_PASSWORD
          ? `the password of ${target.user} was refused`
          : sshFailure(login),
  });
  if (login.status !== 0) return;

  const sudo = await sshRun(target, "sudo -n true", { timeoutMs: 60_000, signal });
  report.checks.push({
    name: "sudo",
    pass: sudo.status === 0,
    durationMs: sudo.durationMs,
    message: sudo.status === 0 ? "passwordless sudo works" : `sudo -n true failed: ${sshFailure(sudo)}`,
  });

  const env = {
    EXPECT_HOSTNAME: args.hostname ?? "",
    NIC_MACS: Array.from({ length: args.nics }, (_, i) => nicMac(i)).join(" "),
    NIC_NAMING: image.netNaming ?? "",
    SERVICES: args.services.join(" "),
    SETTLE_SECONDS: String(args.settleSeconds),
  };
  const assignments = Object.entries(env).map(([k, v]) => `${k}='${v}'`);
  const standard = await sshRun(target, `env ${assignments.join(" ")} sh -s`, {
    input: fs.readFileSync(ctx.files[CHECKS_ROLE]),
    timeoutMs: (args.settleSeconds + 60) * 1000,
    signal,
  });
  const lines = standard.stdout.split("\n").filter((l) => l.includes("\t"));
  for (const line of lines) {
    const [name, verdict, ms, ...message] = line.split("\t");
    report.checks.push({
      name,
      pass: verdict === "pass",
      durationMs: Number(ms),
      message: message.join("\t"),
    });
  }
  if (standard.status !== 0 || lines.length === 0) {
    report.checks.push({
      name: "standard-checks",
      pass: false,
      durationMs: standard.durationMs,
      message: `the checks script did not run: ${sshFailure(standard)}`,
    });
  }

  const testScript = ctx.files[TEST_SCRIPT_ROLE];
  if (!testScript) return;
  const body = fs.readFileSync(testScript);
  const copy = await sshRun(target, "cat > /tmp/antidote-test.sh && chmod +x /tmp/antidote-test.sh", {
    input: body,
    timeoutMs: 60_000,
    signal,
  });
  const run =
    copy.status === 0
      ? await sshRun(
          target,
          body.toString("latin1", 0, 2) === "#!" ? "/tmp/antidote-test.sh" : "sh /tmp/antidote-test.sh",
          {
            timeoutMs: args.testTimeoutSeconds * 1000,
            signal,
          },
        )
      : copy;
  const output = run.stdout + run.stderr;
  fs.writeFileSync(path.join(ctx.out, "test.log"), output);
  report.test = {
    exitStatus: run.status,
    durationMs: run.durationMs,
    output: output.slice(-REPORT_OUTPUT_CHARS),
  };
  const last = output.trimEnd().split("\n").slice(-10).join("\n");
  report.checks.push({
    name: "test.sh",
    pass: run.status === 0,
    durationMs: run.durationMs,
    message:
      copy.status !== 0
        ? `could not copy test.sh in: ${sshFailure(copy)}`
        : run.timedOut
          ? `test.sh did not finish within ${args.testTimeoutSeconds} s; last output:\n${last}`
          : run.status === 0
            ? "exit status 0"
            : `test.sh exited with status ${run.status}; last output:\n${last}`,
  });
}

function sshFailure(result: { status: number | null; stderr: string; timedOut: boolean }): string {
  if (result.timedOut) return "ssh timed out";
  const said = result.stderr.trim().split("\n").slice(-3).join(" | ");
  return `ssh exit ${result.status}${said ? `: ${said}` : ""}`;
}

/** Console text for people: no terminal escapes (GRUB's menu), no carriage returns. */
export function readableConsole(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
      .replace(/\r/g, "")
  );
}

/** How many lines of the serial console a failure shows: the end of a boot that never reached SSH. */
const CONSOLE_LINES = 6;

/**
 * The failed checks, then (when SSH never answered, so no check could say more) the end of the serial console. The
 * accelerator's reason is not repeated: the step's progress line said it, and it is rarely why a check failed.
 */
export function failureMessage(report: BootTestReport): string {
  const failed = report.checks.filter((c) => !c.pass);
  const lines = [
    `boot test of image '${report.image}' failed: ${failed.map((c) => `check '${c.name}': ${c.message}`).join("; ")}`,
    `(${report.accelerator}; ${report.bootToSshMs === null ? "SSH never answered" : `SSH after ${report.bootToSshMs} ms`})`,
  ];
  if (report.bootToSshMs !== null) return lines.join("\n");
  const tail = readableConsole(tailOfFile(report.consoleLog, 80))
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-CONSOLE_LINES);
  return [
    ...lines,
    `serial console (${report.consoleLog}), last lines:`,
    ...(tail.length > 0
      ? tail
      : ["(the console is empty: the firmware found nothing to boot, or QEMU did not start)"]),
  ].join("\n");
}

function xml(text: string): string {
  return (
    text
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, "")
  );
}

/** The report as JUnit XML: one test case per check, so CI systems show which check failed. */
export function junitXml(report: BootTestReport): string {
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const failures = report.checks.filter((c) => !c.pass).length;
  const total = report.checks.reduce((sum, c) => sum + c.durationMs, 0);
  const cases = report.checks.map((c) => {
    const open = `    <testcase classname="boot-test.${xml(report.image)}" name="${xml(c.name)}" time="${seconds(c.durationMs)}"`;
    const output =
      c.name === "test.sh" && report.test
        ? `\n      <system-out>${xml(report.test.output)}</system-out>`
        : "";
    if (c.pass) return output ? `${open}>${output}\n    </testcase>` : `${open}/>`;
    return `${open}>\n      <failure message="${xml(c.message.split("\n")[0])}">${xml(c.message)}</failure>${output}\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${report.checks.length}" failures="${failures}" time="${seconds(total)}">`,
    `  <testsuite name="boot-test: ${xml(report.image)}" tests="${report.checks.length}" failures="${failures}" ` +
      `time="${seconds(total)}">`,
    `    <properties>`,
    `      <property name="accelerator" value="${report.accelerator}"/>`,
    `      <property name="firmware" value="${report.firmware}"/>`,
    `      <property name="bootToSshMs" value="${report.bootToSshMs ?? ""}"/>`,
    `      <property name="consoleLog" value="${xml(report.consoleLog)}"/>`,
    `    </properties>`,
    ...cases,
    "  </testsuite>",
    "</testsuites>",
    "",
  ].join("\n");
}
