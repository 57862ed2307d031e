import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { rootfsInputs } from "../../lib/components/rootfs";
import { RootfsStepArgs } from "../../lib/steps/rootfs";
import { StepSpec } from "../../lib/steps/step";
import { labRootfsArgs } from "../fixtures/lab-images";
import { PROJECT_ROOT, tempDir } from "../helpers";
import { RecordedResource, useMocks } from "../mocks";

/** The project's images, copied beside a link to lib/ so that one of their files can change. */
function copyOfImages(): string {
  const root = tempDir("images");
  fs.symlinkSync(path.join(PROJECT_ROOT, "lib"), path.join(root, "lib"));
  fs.cpSync(path.join(PROJECT_ROOT, "images"), path.join(root, "images"), { recursive: true });
  return path.join(root, "images");
}

/** Step name → key, for every step the program registers with `imagesDir` as its images. */
async function stepKeys(imagesDir: string): Promise<Record<string, string>> {
  const specs = await stepSpecs(imagesDir);
  return Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, s.key]));
}

/** Step name → spec, for every step the program registers with `imagesDir` as its images. */
async function stepSpecs(imagesDir: string): Promise<Record<string, StepSpec>> {
  // A fresh program, as each `pulumi up` is: the images and the library (its shared kernel and launcher) load anew.
  const lib = path.join(PROJECT_ROOT, "lib") + path.sep;
  for (const id of Object.keys(require.cache)) {
    if (id.startsWith(imagesDir + path.sep) || id.startsWith(lib)) delete require.cache[id];
  }
  const resources: RecordedResource[] = await useMocks({ "antidote-images:imagesDir": imagesDir });
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after the cache was cleared
  (require("../../lib/program") as typeof import("../../lib/program")).loadImages();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const specs = resources
    .filter((r) => r.type === "command:local:Command" && typeof r.inputs.stdin === "string")
    .map((r) => JSON.parse(r.inputs.stdin as string) as StepSpec);
  return Object.fromEntries(specs.map((s) => [s.name, s]));
}

describe("the project's images (Pulumi mocks)", () => {
  it("are built by the integration tests' fixtures with the Rootfs arguments the program gives them", async function () {
    this.timeout(60_000);
    const specs = await stepSpecs(path.join(PROJECT_ROOT, "images"));
    for (const name of ["frr", "utility"] as const) {
      const program = specs[`${name}-rootfs`];
      const fixture = rootfsInputs(name, labRootfsArgs(name));
      const { packages, hooks, playbook, lessonServices } = program.args as unknown as RootfsStepArgs;
      assert.deepStrictEqual(
        { packages, hooks, playbook, lessonServices, files: Object.keys(program.files).sort() },
        {
          packages: fixture.args.packages,
          lessonServices: fixture.args.lessonServices,
          hooks: fixture.args.hooks,
          playbook: fixture.args.playbook,
          files: Object.keys(fixture.files).sort(),
        },
        `${name}: test/fixtures/lab-images.ts and images/${name}/image.ts disagree`,
      );
    }
  });

  it("builds every image to a container, and an edit of frr/install.sh changes frr's keys and no one else's", async function () {
    this.timeout(60_000);
    const images = copyOfImages();
    const before = await stepKeys(images);
    for (const image of ["debian-base", "frr", "utility"]) {
      for (const step of ["rootfs", "disk", "boot-test", "container"]) {
        assert.ok(before[`${image}-${step}`], `${image}-${step} in ${Object.keys(before).join(", ")}`);
      }
    }
    fs.appendFileSync(path.join(images, "frr", "install.sh"), "echo one more line\n");
    const after = await stepKeys(images);
    assert.deepStrictEqual(Object.keys(after).sort(), Object.keys(before).sort());
    const changed = Object.keys(after).filter((name) => after[name] !== before[name]);
    assert.deepStrictEqual(changed.sort(), ["frr-boot-test", "frr-container", "frr-disk", "frr-rootfs"]);
  });

  it("keys utility's playbook, its role's tasks and its variables file: an edited line rebuilds utility only", async function () {
    this.timeout(60_000);
    const images = copyOfImages();
    const playbook = path.join(images, "utility", "ansible");
    let previous = await stepKeys(images);
    for (const file of ["site.yml", "roles/lab_tools/tasks/main.yml", "roles/lab_tools/defaults/main.yml"]) {
      const text = fs.readFileSync(path.join(playbook, file), "utf8");
      // One line changed, as an author would: the first `name:` or `:` line gets a comment.
      fs.writeFileSync(path.join(playbook, file), text.replace(/^(.*:.*)$/m, "$1 # edited"));
      const after = await stepKeys(images);
      const changed = Object.keys(after).filter((name) => after[name] !== previous[name]);
      assert.deepStrictEqual(
        changed.sort(),
        ["utility-boot-test", "utility-container", "utility-disk", "utility-rootfs"],
        `after editing ${file}`,
      );
      previous = after;
    }
  });
});
