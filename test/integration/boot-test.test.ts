import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { BootTestReport } from "../../lib/steps/boot-test";
import { runStep, StepFailure } from "../../lib/steps/run";
import { StepResult, StepSpec } from "../../lib/steps/step";
import { bootProbeVm } from "../../lib/vm/accel";
import { BaseDisk, bootTestSpec, debianBaseDisk, definitions, diskSpec } from "../fixtures/disk";
import { PROJECT_ROOT, sharedTestStore, tempDir } from "../helpers";

/** QEMU processes of boot tests: their overlays live in the step's work dir, `antidote-boot-test-*`. */
function bootTestQemus(): string[] {
  try {
    return execFileSync("pgrep", ["-a", "-f", "qemu-system.*antidote-boot-test-"], { encoding: "utf8" })
      .trim()
      .split("\n");
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe("boot test step (real debian-base disk, TCG unless KVM works)", () => {
  const store = sharedTestStore();
  const scripts = tempDir("boot-scripts");
  let base: BaseDisk;

  const run = (s: StepSpec, extra: { signal?: AbortSignal; progress?: (line: string) => void } = {}) =>
    runStep(s, { store, definitions, root: PROJECT_ROOT, progress: () => {}, ...extra });

  /** A variant of debian-base's disk with extra kernel parameters (cheap: the rootfs and kernel are reused). */
  const variant = (name: string, kernelCmdline: string[]) =>
    run(diskSpec(name, { kernelCmdline }, { rootfs: base.rootfs.key, kernel: base.kernel.key }));

  /** Runs a boot test that must fail; returns the failure after checking no QEMU is left. */
  /** What the user is shown of a failure: its cause, then the excerpt. */
  const shown = (failure: StepFailure) => [failure.message, ...failure.excerpt].join("\n");

  async function expectFailure(s: StepSpec): Promise<StepFailure> {
    let failure: StepFailure | undefined;
    await assert.rejects(run(s), (err: StepFailure) => {
      failure = err;
      return err instanceof StepFailure;
    });
    assert.deepStrictEqual(bootTestQemus(), [], "no QEMU left behind");
    assert.strictEqual(await store.has(s.key), false);
    return failure!;
  }

  before(async () => {
    base = await debianBaseDisk(store);
  });

  after(() => fs.rmSync(scripts, { recursive: true, force: true }));

  describe("a good image", () => {
    let result: StepResult;
    let report: BootTestReport;

    before(async () => {
      const test = path.join(scripts, "test.sh");
      // The run's time in the script makes a new key: every run of this test boots the VM (none comes from the store).
      fs.writeFileSync(
        test,
        `#!/bin/sh\n# run at ${new Date().toISOString()}\nset -e\necho "kernel $(uname -r)"\nsudo -n systemctl is-active ssh\n`,
      );
      const s = bootTestSpec("debian-base", base, { nics: 2, services: ["ssh.service"] }, test);
      result = await run(s);
      assert.strictEqual(result.cached, false);
      report = JSON.parse(fs.readFileSync(result.primary, "utf8")) as BootTestReport;
    });

    it("passes every standard check and the image's test.sh", () => {
      assert.deepStrictEqual(
        report.checks.map((c) => [c.name, c.pass]),
        [
          ["boot", true],
          ["login", true],
          ["sudo", true],
          ["hostname", true],
          ["nics", true],
          ["network", true],
          ["services", true],
          ["failed-units", true],
          ["test.sh", true],
        ],
        JSON.stringify(report.checks, null, 2),
      );
      assert.strictEqual(report.passed, true);
      assert.match(report.checks.find((c) => c.name === "nics")!.message, /2 NICs in order: eth0 eth1/);
      assert.match(
        report.checks.find((c) => c.name === "network")!.message,
        /eth0 has 10\.0\.2\.15\/24 \(DHCP\)/,
      );
      assert.strictEqual(report.test!.exitStatus, 0);
      assert.ok(report.test!.output.includes(`kernel ${base.disk.outputs.kernelRelease}`));
    });

    it("records boot-to-SSH time, the accelerator and the console from the firmware on, and writes JUnit XML", () => {
      assert.ok(report.bootToSshMs! > 0 && report.bootToSshMs! < 120_000);
      assert.ok(["kvm", "tcg"].includes(report.accelerator));
      assert.strictEqual(result.outputs.accelerator, report.accelerator);
      const consoleText = fs.readFileSync(path.join(result.location, "console.log"), "utf8");
      assert.ok(consoleText.includes(`Linux version ${base.disk.outputs.kernelRelease}`));
      const junit = fs.readFileSync(path.join(result.location, "junit.xml"), "utf8");
      assert.match(junit, /<testsuite name="boot-test: debian-base" tests="9" failures="0"/);
      assert.deepStrictEqual(bootTestQemus(), []);
    });
  });

  it("fails the 'test.sh' check when the image's test exits 1, with its output, and keeps its JUnit report", async () => {
    const test = path.join(scripts, "failing.sh");
    fs.writeFileSync(test, "#!/bin/sh\necho 'bgp session down' >&2\nexit 1\n");
    const failure = await expectFailure(bootTestSpec("failing-test", base.disk.key, {}, test));
    assert.match(
      failure.message,
      /boot test of image 'failing-test' failed: check 'test\.sh': test\.sh exited with status 1/,
    );
    assert.ok(shown(failure).includes("bgp session down"), shown(failure));
    // Beside the log, in the store's logs: the JUnit report, the failed check a failed test case.
    assert.ok(failure.log, "the failure names its log");
    const junit = fs.readFileSync(failure.log.replace(/\.log$/, ".junit.xml"), "utf8");
    assert.match(junit, /<testcase [^>]*name="test\.sh"[^>]*>\s*<failure /);
  });

  it("fails the 'boot' check when sshd is disabled, saying the VM got to a login prompt", async () => {
    const disk = await variant("no-sshd", ["systemd.mask=ssh.service"]);
    const failure = await expectFailure(bootTestSpec("no-sshd", disk.key));
    assert.match(
      failure.message,
      /check 'boot': the VM reached a login prompt on the console but SSH did not answer/,
    );
    assert.match(shown(failure), /serial console \(\S+\.console\.log\), last lines:\n[^]*login:/);
  });

  it("fails the 'boot' check at once when the kernel panics, showing the panic", async () => {
    const disk = await variant("panics", ["init=/nonexistent"]);
    const started = Date.now();
    const failure = await expectFailure(bootTestSpec("panics", disk.key));
    assert.match(failure.message, /check 'boot': the kernel panicked: Kernel panic - not syncing/);
    assert.match(shown(failure), /serial console \(\S+\), last lines:\n[^]*Kernel panic/);
    assert.ok(Date.now() - started < 100_000, "did not wait for the SSH deadline");
  });

  it("stops QEMU and removes its overlay when interrupted mid-boot (SIGTERM)", async () => {
    const s = bootTestSpec("interrupted", base.disk.key, { memoryMiB: 768 });
    const controller = new AbortController();
    const workDirs = () =>
      fs.readdirSync(path.join(store.location, "tmp")).filter((d) => d.startsWith("antidote-boot-test-"));
    const before = workDirs();
    await assert.rejects(
      run(s, {
        signal: controller.signal,
        progress: (line) => {
          if (line.includes("boot test: ")) setTimeout(() => controller.abort(), 3000);
        },
      }),
      /was interrupted/,
    );
    assert.deepStrictEqual(bootTestQemus(), []);
    assert.deepStrictEqual(
      workDirs().filter((d) => !before.includes(d)),
      [],
    );
  });
});

describe("KVM probe", () => {
  it("boots its probe VM to the end under TCG, so a failure under KVM means KVM", async () => {
    const result = await bootProbeVm(["-accel", "tcg"]);
    assert.ok(result.passed, `probe VM did not finish: ${JSON.stringify(result)}`);
    assert.strictEqual(result.timedOut, false);
  });
});
