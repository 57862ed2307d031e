import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Writable } from "stream";
import { ExecError } from "../../lib/exec";
import { RunEvent, StepRecord } from "../../lib/runner/local-runner";
import { ProgressDisplay } from "../../lib/runner/progress";
import { BootTestReport, failureMessage } from "../../lib/steps/boot-test";
import {
  EXCERPT_LINES,
  failureFromOutput,
  formatFailure,
  startsFailureReport,
  stepSubject,
  summarizeFailure,
} from "../../lib/steps/failure";
import { ConfigCheckError } from "../../lib/steps/kernel/config";
import { StepLog } from "../../lib/steps/log";
import { TreeCommandError } from "../../lib/steps/rootfs/tree";
import { PROJECT_ROOT, tempDir } from "../helpers";

/** Real logs of failed steps, kept as they were written (see test/fixtures/failure-logs/README.md). */
const FIXTURES = path.join(PROJECT_ROOT, "test", "fixtures", "failure-logs");
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), "utf8");

/** The last command line of a log: what an `ExecError` carries as its command. */
function lastCommand(log: string): string {
  return log
    .split("\n")
    .filter((l) => l.startsWith("$ "))
    .at(-1)!
    .slice(2);
}

/** Every line of `text` that appears more than once. */
function repeatedLines(text: string): string[] {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  return [...new Set(lines.filter((l, i) => lines.indexOf(l) !== i))];
}

describe("failure summary (real logs of failed steps)", () => {
  it("names the package apt could not find after a derived image's apt-get install, with apt's lines", () => {
    // What the rootfs step threw: its tree command failed.
    const error = new TreeCommandError("package installation exited with status 100");
    const failure = summarizeFailure(error, fixture("apt-install-missing-package.log"), "/s/logs/k.log");
    assert.strictEqual(failure.headline, "apt could not find package ngnix");
    assert.deepStrictEqual(failure.excerpt, [
      "Reading package lists...",
      "Building dependency tree...",
      "Reading state information...",
      "E: Unable to locate package ngnix",
    ]);
    assert.strictEqual(failure.log, "/s/logs/k.log");
  });

  it("names the package inside mmdebstrap's output, without its command lines", () => {
    const log = fixture("mmdebstrap-missing-package.log");
    // What the bootstrap threw: the whole mmdebstrap command line and its status.
    const error = new ExecError(lastCommand(log), "exited with status 25", "/s/logs/k.log");
    const failure = summarizeFailure(error, log);
    assert.strictEqual(failure.headline, "apt could not find package ngnix");
    assert.ok(failure.excerpt.length <= EXCERPT_LINES, failure.excerpt.join("\n"));
    assert.ok(failure.excerpt.includes("E: Unable to locate package ngnix"));
    assert.ok(
      failure.excerpt.every((l) => !l.includes("--include=") && !l.includes("Dir::Bin::dpkg")),
      `no command line echoed:\n${failure.excerpt.join("\n")}`,
    );
  });

  it("names a failed install.sh and its exit status, with what it printed", () => {
    const error = new TreeCommandError("install.sh exited with status 1");
    const failure = summarizeFailure(error, fixture("install-script-failed.log"));
    assert.strictEqual(failure.headline, "install.sh exited with status 1");
    assert.deepStrictEqual(failure.excerpt, [
      "configuring nginx",
      "cp: cannot stat '/etc/nginx/nginx.conf': No such file or directory",
    ]);
  });

  it("names the boot test's failed check, with its output, and not the KVM probe's verdict", () => {
    const report = JSON.parse(fixture("boot-test-check-failed.report.json")) as BootTestReport;
    const failure = summarizeFailure(
      new Error(failureMessage(report)),
      fixture("boot-test-check-failed.log"),
    );
    assert.strictEqual(
      failure.headline,
      "boot test of image 'failing-test' failed: check 'test.sh': test.sh exited with status 1",
    );
    assert.deepStrictEqual(failure.excerpt, ["bgp session down", "(tcg; SSH after 11745 ms)"]);
    assert.doesNotMatch(formatFailure(failure), /KVM/);
  });

  it("shows the end of the serial console when SSH never answered", () => {
    const report = JSON.parse(fixture("boot-test-no-ssh.report.json")) as BootTestReport;
    report.consoleLog = path.join(FIXTURES, "boot-test-no-ssh.console.log");
    const failure = summarizeFailure(new Error(failureMessage(report)), fixture("boot-test-no-ssh.log"));
    assert.match(
      failure.headline,
      /^boot test of image 'no-sshd' failed: check 'boot': the VM reached a login prompt/,
    );
    assert.strictEqual(failure.excerpt.length, EXCERPT_LINES);
    assert.strictEqual(failure.excerpt[0], "(tcg; SSH never answered)");
    assert.strictEqual(failure.excerpt[1], `serial console (${report.consoleLog}), last lines:`);
    assert.strictEqual(failure.excerpt.at(-1), "debian-base login:");
    const text = formatFailure(failure);
    assert.ok(!text.includes("KVM") && !text.includes("\x1b") && !text.includes("\r"), text);
  });

  it("names the kernel option that did not get its value", () => {
    const error = new ConfigCheckError([
      {
        option: { symbol: "BRIGDE", value: "y", fragment: "kernel/lab.config", line: 4 },
        actual: "n",
        reason:
          "unknown symbol: no Kconfig file of this kernel defines it for x86 (did you mean CONFIG_BRIDGE?)",
      },
    ]);
    const failure = summarizeFailure(error, "");
    assert.strictEqual(
      failure.headline,
      "kernel option CONFIG_BRIGDE did not get its value: requested y, got n: unknown symbol: no Kconfig file of " +
        "this kernel defines it for x86 (did you mean CONFIG_BRIDGE?)",
    );
    assert.deepStrictEqual(failure.excerpt, [
      "  CONFIG_BRIGDE (kernel/lab.config:4): requested y, got n: unknown symbol: no Kconfig file of this kernel " +
        "defines it for x86 (did you mean CONFIG_BRIDGE?)",
    ]);
  });

  describe("a command that failed for another reason (real commands)", () => {
    let dir: string;
    let log: StepLog;
    beforeEach(() => {
      dir = tempDir("failure");
      log = new StepLog(path.join(dir, "step.log"), new AbortController().signal, () => {});
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("takes the last error line it printed, not its command line", async () => {
      const error = (await log
        .exec("sh", ["-c", "echo starting; ls /nonexistent-antidote; echo 'E: late trouble' >&2; exit 3"])
        .catch((e: unknown) => e)) as Error;
      const failure = summarizeFailure(error, fs.readFileSync(log.path, "utf8"), log.path);
      assert.strictEqual(failure.headline, "E: late trouble");
      assert.deepStrictEqual(failure.excerpt, [
        "starting",
        "ls: cannot access '/nonexistent-antidote': No such file or directory",
        "E: late trouble",
      ]);
    });

    it("names the program behind its isolating wrapper and how it ended when it printed nothing", async () => {
      const error = (await log
        .exec("unshare", ["--mount", "--propagation", "private", "--fork", "sh", "-c", "exit 3"])
        .catch((e: unknown) => e)) as Error;
      const failure = summarizeFailure(error, fs.readFileSync(log.path, "utf8"));
      assert.strictEqual(failure.headline, "sh exited with status 3");
      assert.deepStrictEqual(failure.excerpt, []);
    });
  });
});

describe("failure report of the step command", () => {
  const step = { image: "web", name: "web-rootfs", kind: "rootfs" };

  it("is read back from the command's stderr after its progress lines, without the step's own name", () => {
    const failure = {
      headline: `${stepSubject(step)} failed: apt could not find package ngnix`,
      excerpt: ["E: Unable to locate package ngnix"],
      log: "/s/logs/k.log",
    };
    const stderr = `web: web-rootfs: building 1e13\nweb: installing ngnix\n${formatFailure(failure)}\n`;
    assert.deepStrictEqual(stderr.split("\n").map(startsFailureReport), [
      false,
      false,
      true,
      false,
      false,
      false,
    ]);
    assert.deepStrictEqual(failureFromOutput(stderr, stepSubject(step)), {
      ...failure,
      headline: "apt could not find package ngnix",
    });
    assert.strictEqual(
      failureFromOutput(
        `error: ${stepSubject(step)}: bad argument packages: expected a list\n`,
        stepSubject(step),
      ).headline,
      "bad argument packages: expected a list",
    );
  });

  it("without a report (ssh could not connect) is the output's last line", () => {
    const failure = failureFromOutput(
      "Warning: Permanently added '[127.0.0.1]:2222' to the list of known hosts.\n" +
        "ssh: connect to host 127.0.0.1 port 2222: Connection refused\n",
    );
    assert.strictEqual(failure.headline, "ssh: connect to host 127.0.0.1 port 2222: Connection refused");
  });
});

describe("progress display of a failed step", () => {
  it("says the cause on the step's line and shows the log lines once, then the log's path", () => {
    let output = "";
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        output += chunk.toString();
        done();
      },
    }) as unknown as NodeJS.WriteStream;
    const display = new ProgressDisplay(out, false);
    const record: StepRecord = {
      name: "web-rootfs",
      image: "web",
      kind: "rootfs",
      key: "1e13".repeat(16),
      status: "queued",
    };
    const step = (patch: Partial<StepRecord>): RunEvent => ({
      type: "step",
      record: Object.assign(record, patch),
    });
    display.onEvent(step({ status: "building" }));
    for (const line of ["web: web-rootfs: building 1e131e131e13", "web: installing ngnix"])
      display.onEvent({ type: "progress", record, line });
    // The record as the runner makes it from the step command's stderr.
    const summary = summarizeFailure(
      new TreeCommandError("package installation exited with status 100"),
      fixture("apt-install-missing-package.log"),
      "/s/logs/k.log",
    );
    const stderr = formatFailure({
      ...summary,
      headline: `${stepSubject(record)} failed: ${summary.headline}`,
    });
    const failure = failureFromOutput(stderr, stepSubject(record));
    display.onEvent(step({ status: "failed", elapsedMs: 25_000, error: formatFailure(failure, "") }));
    display.finish({
      stack: "local",
      mode: "up",
      steps: [record],
      unsupported: [],
      outputs: {},
      wallMs: 25_000,
    });

    assert.match(output, /✗ +[\d.]+s web +web-rootfs +failed: apt could not find package ngnix\n/);
    assert.match(output, /\n✗ web: web-rootfs failed: apt could not find package ngnix\n/);
    assert.strictEqual(output.match(/E: Unable to locate package ngnix/g)?.length, 1);
    assert.strictEqual(output.match(/\/s\/logs\/k\.log/g)?.length, 1);
    assert.deepStrictEqual(repeatedLines(output), []);
  });
});
