import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Registration } from "../../lib/engine/monitor";
import { reveal } from "../../lib/engine/properties";
import { tempDir } from "../helpers";
import { ofType, preview, projectCopy } from "./harness";

const UPLOAD = "gcp:storage/bucketObject:BucketObject";
const SHA256 = "ab".repeat(32);

/** A project whose only image is a vendor's vmdk, imported and published untested. */
function vendorProject(): { root: string; imagesDir: string } {
  const root = projectCopy();
  const imagesDir = path.join(root, "vendor-images");
  const dir = path.join(imagesDir, "vendor");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "metadata.yaml"), "name: vendor\ndescription: A vendor's appliance.\n");
  fs.writeFileSync(
    path.join(dir, "image.ts"),
    [
      'import * as path from "path";',
      'import { ContainerImage, Qcow2Disk } from "../../lib";',
      'export const disk = Qcow2Disk.import("vendor-disk", {',
      `  source: path.join(__dirname, "appliance.vmdk"), sha256: "${SHA256}", format: "vmdk", image: "vendor",`,
      "});",
      "export const container = new ContainerImage(",
      '  "vendor-container",',
      '  { image: "vendor", disk, allowUntested: true, metadata: __dirname },',
      ");",
      "",
    ].join("\n"),
  );
  return { root, imagesDir };
}

describe("an imported disk's original, archived in the stack's bucket (pulumi preview)", function () {
  this.timeout(120_000);
  const { root, imagesDir } = vendorProject();
  const run = async (stack: string) => {
    const result = await preview(stack, {
      root,
      config: {
        "antidote-images:store": path.join(tempDir("preview-store"), "store"),
        "antidote-images:imagesDir": imagesDir,
      },
      env: stack === "nightly" ? { ANTIDOTE_REGISTRY_PASSWORD: "not-a-real-token" } : {},
    });
    assert.strictEqual(result.exitCode, 0, `${result.errors.join("\n")}\n${result.outputTail.join("\n")}`);
    return result.server.registrations;
  };

  it("is uploaded beside the converted disk, named by the vendor's sha256, after the image built", async () => {
    const registrations = await run("nightly");
    const uploads = ofType(registrations, UPLOAD);
    const byName = new Map(uploads.map((u) => [String(u.inputs.name), u]));
    assert.deepStrictEqual([...byName.keys()].map((n) => n.replace(/[0-9a-f]{64}/, "<sha256>")).sort(), [
      "disks/vendor/<sha256>.qcow2",
      "disks/vendor/original/<sha256>.vmdk",
    ]);
    const original = byName.get(`disks/vendor/original/${SHA256}.vmdk`);
    assert.ok(original, [...byName.keys()].join(", "));
    assert.strictEqual(original.inputs.bucket, "antidote-images-artifacts");
    assert.deepStrictEqual(reveal(original.inputs.metadata), { sha256: SHA256 });
    assert.strictEqual(original.retainOnDelete, true);
    // The same gate as the disk's upload: the container step (and a boot test, when there is one).
    const disk = [...byName.values()].find((u) => u !== original) as Registration;
    assert.deepStrictEqual([...original.dependencies].sort(), [...disk.dependencies].sort());
    const container = ofType(registrations, "command:local:Command").find(
      (c) => (JSON.parse(String(reveal(c.inputs.stdin))) as { name: string }).name === "vendor-container",
    );
    assert.ok(
      container && original.dependencies.includes(container.urn),
      "uploaded only once the image built",
    );
  });

  it("is not uploaded by a stack without a bucket", async () => {
    const registrations = await run("local");
    assert.deepStrictEqual(ofType(registrations, UPLOAD), []);
  });
});
