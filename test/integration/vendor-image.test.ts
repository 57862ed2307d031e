import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { RunReport } from "../../lib/runner/local-runner";
import { BootTestReport } from "../../lib/steps/boot-test";
import { LocalStore } from "../../lib/store/local";
import { runStep, StepFailure } from "../../lib/steps/run";
import { debianBaseDisk, definitions, spec } from "../fixtures/disk";
import { processesMatching, PROJECT_ROOT, runCli, sharedTestStore, tempDir } from "../helpers";

/**
 * The example vendor image (examples/vendor-linux) as an author uses it: copied into a project's images/, with
 * vendor.json naming a disk the pipeline made (debian-base's, standing in for a vendor's qcow2), built with
 * `antidote-images up`: imported, provisioned offline with virt-customize, booted and tested over SSH as the
 * provisioned user.
 */
describe("a vendor image imported with provisioning (examples/vendor-linux, real libguestfs and QEMU)", function () {
  const root = tempDir("vendor-project");
  after(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("boots, answers SSH with the provisioned login and passes its test.sh", async function () {
    const { disk: source } = await debianBaseDisk(sharedTestStore());
    for (const link of ["lib", "bin", "node_modules"])
      fs.symlinkSync(path.join(PROJECT_ROOT, link), path.join(root, link));
    for (const file of ["Pulumi.yaml", "index.ts", "tsconfig.json"])
      fs.copyFileSync(path.join(PROJECT_ROOT, file), path.join(root, file));
    const dir = path.join(root, "images", "vendor-linux");
    fs.cpSync(path.join(PROJECT_ROOT, "examples", "vendor-linux"), dir, { recursive: true });
    fs.copyFileSync(source.primary, path.join(dir, "vendor.qcow2"));
    const sha256 = execFileSync("sha256sum", [path.join(dir, "vendor.qcow2")])
      .toString()
      .split(" ")[0];
    fs.writeFileSync(
      path.join(dir, "vendor.json"),
      JSON.stringify({ source: "vendor.qcow2", sha256, format: "qcow2" }),
    );
    fs.mkdirSync(path.join(root, "stacks"));
    fs.writeFileSync(
      path.join(root, "stacks", "Pulumi.local.yaml"),
      `config:\n  antidote-images:store: ${sharedTestStore().location}\n  antidote-images:registry: none\n`,
    );

    const run = runCli(root, ["up", "--stack", "local", "--json"], { timeoutMs: 3_000_000 });
    assert.strictEqual(run.status, 0, `${run.stderr}\n${run.stdout.slice(-4000)}`);
    const report = JSON.parse(run.stdout) as RunReport;
    const steps = Object.fromEntries(report.steps.map((s) => [s.name, s]));
    for (const name of ["vendor-linux-disk", "vendor-linux-boot-test"]) {
      assert.ok(["built", "cached"].includes(steps[name]?.status), `${name}: ${JSON.stringify(steps[name])}`);
    }
    const bootTest = JSON.parse(
      fs.readFileSync(steps["vendor-linux-boot-test"].result!.primary, "utf8"),
    ) as BootTestReport;
    assert.ok(bootTest.passed, JSON.stringify(bootTest.checks));
    // The standard checks logged in with the provisioned password and ran sudo -n as that user.
    const checks = Object.fromEntries(bootTest.checks.map((c) => [c.name, c]));
    for (const name of Object.keys(checks)) assert.ok(checks[name].pass, `${name}: ${checks[name].message}`);
    assert.match(JSON.stringify(bootTest.checks), /netops/);
    assert.strictEqual(bootTest.test?.exitStatus, 0, bootTest.test?.output);
    assert.match(bootTest.test?.output ?? "", /^vendor-linux: ok \(first boot at \d{4}-/m);
    // The plaintext password is in no spec the program handed to a step.
    const disk = steps["vendor-linux-disk"].result!;
    const record = fs.readFileSync(path.join(disk.location, "meta.json"), "utf8");
    assert.ok(!record.includes("netops-lab-pw"), "the disk's record holds the hash, not the password");
  });

  it("stopped while virt-customize works: no artifact, no virt-customize or appliance QEMU left", async function () {
    const { disk: source } = await debianBaseDisk(sharedTestStore());
    const store = new LocalStore(tempDir("vendor-stop-store"));
    const args = {
      source: source.primary,
      sha256: source.sha256,
      format: "qcow2",
      provision: { user: null, sshPasswordLogin: true, files: [], firstBoot: null },
    };
    const s = spec("disk-import", "vendor-stopped", args);
    const controller = new AbortController();
    let appliance: string[] = [];
    const failure = await runStep(s, {
      store,
      definitions,
      root: PROJECT_ROOT,
      signal: controller.signal,
      // Stopped once the appliance VM runs (it takes 30 s or more to boot under TCG).
      progress: (line) => {
        if (!line.includes("provisioning the disk")) return;
        const poll = setInterval(() => {
          appliance = processesMatching(store.location);
          if (appliance.some((p) => p.includes("qemu-system"))) {
            clearInterval(poll);
            controller.abort();
          }
        }, 500);
      },
    }).then(
      () => assert.fail("the import finished before it could be stopped"),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof StepFailure && /was interrupted/.test(failure.message), String(failure));
    assert.ok(appliance.length > 0, "the appliance was running when the step was stopped");
    assert.strictEqual(await store.has(s.key), false);
    // The appliance's QEMU is libguestfs's child, in a process group of its own: it must go with the step too.
    const deadline = Date.now() + 15_000;
    while (processesMatching(store.location).length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.deepStrictEqual(processesMatching(store.location), []);
  });

  it("fails naming what virt-customize found on a disk with no system on it, leaving no artifact", async function () {
    const dir = tempDir("vendor-blank");
    const blank = path.join(dir, "blank.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", blank, "64M"]);
    const sha256 = execFileSync("sha256sum", [blank]).toString().split(" ")[0];
    const store = new LocalStore(tempDir("vendor-blank-store"));
    const args = {
      source: blank,
      sha256,
      format: "qcow2",
      provision: { user: null, sshPasswordLogin: true, files: [], firstBoot: null },
    };
    const failure = await runStep(spec("disk-import", "vendor-blank", args), {
      store,
      definitions,
      root: PROJECT_ROOT,
      progress: () => {},
    }).then(
      () => assert.fail("the import succeeded"),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof StepFailure, String(failure));
    assert.match(
      failure.message,
      /^vendor-blank: step vendor-blank \(disk-import\) failed: virt-customize: error: no operating systems/,
    );
    assert.ok(failure.log && fs.existsSync(failure.log));
    assert.strictEqual(await store.has(spec("disk-import", "vendor-blank", args).key), false);
  });
});
