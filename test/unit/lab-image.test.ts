import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { LabImage } from "../../lib/components/lab-image";
import { StepSpec } from "../../lib/steps/step";
import { PROJECT_ROOT, tempDir } from "../helpers";
import { useMocks, valueOf } from "../mocks";

describe("LabImage (Pulumi mocks)", () => {
  const debianBase = path.join(PROJECT_ROOT, "images", "debian-base");

  async function specOf(step: { command: { stdin: unknown } }): Promise<StepSpec> {
    return JSON.parse((await valueOf(step.command.stdin as never)) as string) as StepSpec;
  }

  it("chains rootfs → disk (shared kernel) → boot test → container, each step parented on the one before", async () => {
    const resources = await useMocks();
    const image = new LabImage("debian-base", { dir: debianBase });
    assert.ok(image.container, "a container by default");
    const [disk, bootTest, container] = await Promise.all([
      specOf(image.disk),
      specOf(image.bootTest),
      specOf(image.container),
    ]);
    assert.strictEqual(disk.parents.rootfs, image.rootfs.key);
    assert.strictEqual(disk.parents.kernel, image.kernel.key);
    assert.strictEqual(bootTest.parents.disk, image.disk.key);
    assert.strictEqual(container.parents.disk, image.disk.key);
    assert.strictEqual(container.parents.bootTest, image.bootTest.key);
    const names = resources.filter((r) => r.type === "antidote:images:ContainerImage").map((r) => r.name);
    assert.deepStrictEqual(names, ["debian-base-container"]);
  });

  it("builds no container when told container: false, and shares the base's kernel with a derived image", async () => {
    await useMocks();
    const base = new LabImage("debian-base", { dir: debianBase, container: false });
    assert.strictEqual(base.container, undefined);
    const derived = new LabImage("frr", {
      dir: path.join(PROJECT_ROOT, "images", "frr"),
      base,
      packages: ["frr"],
    });
    assert.strictEqual(derived.kernel, base.kernel);
    assert.strictEqual((await specOf(derived.rootfs)).parents.base, base.rootfs.key);
  });

  it("rejects a metadata.yaml whose name or base disagrees with image.ts, naming the file and the field", async () => {
    await useMocks();
    const dir = path.join(tempDir("lab-image"), "mine");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "metadata.yaml"), "name: mine\ndescription: A test image.\n");
    assert.throws(
      () => new LabImage("yours", { dir }),
      (err: Error) =>
        err.message.includes(path.join(dir, "metadata.yaml")) && /name: expected 'yours'/.test(err.message),
    );
    fs.writeFileSync(
      path.join(dir, "metadata.yaml"),
      "name: mine\ndescription: A test image.\nbase: debian-base\n",
    );
    assert.throws(
      () => new LabImage("mine", { dir }),
      /base: metadata says 'debian-base', image.ts passes none/,
    );
  });
});
