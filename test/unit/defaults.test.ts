import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Archive } from "../../lib/components/archive";
import { BootTest } from "../../lib/components/boot-test";
import { ContainerImage } from "../../lib/components/container-image";
import { Kernel } from "../../lib/components/kernel";
import { LabImage } from "../../lib/components/lab-image";
import { Launcher } from "../../lib/components/launcher";
import { Qcow2Disk } from "../../lib/components/qcow2-disk";
import { Rootfs } from "../../lib/components/rootfs";
import { BuiltStep } from "../../lib/components/step-command";
import { Template } from "../../lib/components/template";
import { Json } from "../../lib/keys";
import { loadMetadata } from "../../lib/metadata/metadata";
import { stepDefinitions } from "../../lib/steps/registry";
import { StepSpec } from "../../lib/steps/step";
import { PROJECT_ROOT, tempDir } from "../helpers";
import { useMocks, valueOf } from "../mocks";

/**
 * Components own every default: built with only their required arguments, each sends its step a spec whose
 * arguments are complete — the step's check returns them unchanged (it fills in nothing) and fails without any one
 * of them (so nothing that shapes an artifact can be left out of its key).
 */
describe("Defaults live in the components; step arguments are complete and required", () => {
  before(() => useMocks());

  async function assertComplete(step: BuiltStep) {
    const spec = JSON.parse((await valueOf(step.command.stdin)) as string) as StepSpec;
    const definition = stepDefinitions[spec.kind];
    const args = spec.args as Record<string, Json>;
    assert.deepStrictEqual(definition.parseArgs(args), args, `${spec.kind}: the step changed its arguments`);
    for (const field of Object.keys(args)) {
      const partial = { ...args };
      delete partial[field];
      assert.throws(
        () => definition.parseArgs(partial),
        new RegExp(`^Error: ${field}: expected`),
        `${spec.kind}: the step accepted arguments without '${field}'`,
      );
    }
  }

  const dir = tempDir("defaults");
  const template = path.join(dir, "t.txt");
  fs.writeFileSync(template, "x");
  const vendorDisk = path.join(dir, "vendor.raw");
  fs.writeFileSync(vendorDisk, "");

  it("every step component, with only its required arguments", async () => {
    const rootfs = new Rootfs("d-rootfs");
    const kernel = new Kernel("d-kernel");
    const disk = new Qcow2Disk("d-disk", { rootfs, kernel });
    const imported = Qcow2Disk.import("d-vendor", {
      source: vendorDisk,
      sha256: "0".repeat(64),
      format: "raw",
    });
    const bootTest = new BootTest("d-boot-test", { disk });
    const launcher = new Launcher("d-launcher");
    const container = new ContainerImage("d-container", {
      disk,
      bootTest,
      launcher,
      metadata: loadMetadata(path.join(PROJECT_ROOT, "images", "debian-base")),
    });
    const rendered = new Template("d-template", { template });
    const archive = new Archive("d-archive", { members: { rendered } });
    const steps: BuiltStep[] = [
      rootfs,
      kernel,
      disk,
      imported,
      bootTest,
      launcher,
      container,
      rendered,
      archive,
    ];
    assert.deepStrictEqual(
      [...new Set(steps.map((s) => s.spec.kind))].sort(),
      Object.keys(stepDefinitions).sort(),
      "every step kind is covered",
    );
    for (const step of steps) await assertComplete(step);
  });

  it("BootTest takes the host name and login from the disk's Rootfs, into its key", () => {
    const rootfs = new Rootfs("h-rootfs", { hostname: "r1", user: "netops" });
    const disk = new Qcow2Disk("h-disk", { rootfs, kernel: new Kernel("h-kernel") });
    const args = new BootTest("h-boot-test", { disk }).spec.args as Record<string, Json>;
    assert.strictEqual(args.hostname, "r1");
    assert.strictEqual(args.user, "netops");
  });

  it("rejects the options renamed to carry their unit, naming the new name", () => {
    const rootfs = new Rootfs("r-rootfs");
    const kernel = new Kernel("r-kernel");
    assert.throws(
      () => new Qcow2Disk("r-disk", { rootfs, kernel, grubTimeout: 3 } as never),
      /^Error: r-disk: Qcow2Disk r-disk: option 'grubTimeout' is now 'grubTimeoutSeconds' \(seconds\); rename it$/,
    );
    const disk = new Qcow2Disk("r-disk2", { rootfs, kernel });
    for (const [old, now] of [
      ["memory", "memoryMiB"],
      ["timeout", "sshTimeoutSeconds"],
      ["testTimeout", "testTimeoutSeconds"],
    ]) {
      assert.throws(
        () => new BootTest(`r-boot-${old}`, { disk, [old]: 1 } as never),
        new RegExp(`option '${old}' is now '${now}'`),
      );
    }
    // Through LabImage's pass-through settings too, which TypeScript does not check for a JavaScript author.
    assert.throws(
      () =>
        new LabImage("debian-base", {
          dir: path.join(PROJECT_ROOT, "images", "debian-base"),
          bootTest: { timeout: 300 } as never,
        }),
      /^Error: debian-base: BootTest debian-base-boot-test: option 'timeout' is now 'sshTimeoutSeconds'/,
    );
  });
});
