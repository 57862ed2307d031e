import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { loadMetadata } from "../../lib/metadata/metadata";
import { resourcePerformers } from "../../lib/runner/docker-resources";
import { diskImportStep } from "../../lib/steps/disk-import";
import { inspectImage } from "../../lib/steps/docker";
import { runStep } from "../../lib/steps/run";
import { StepResult } from "../../lib/steps/step";
import { buildContainer, containerSpec, testLauncher } from "../fixtures/container";
import { spec } from "../fixtures/disk";
import { PROJECT_ROOT, sharedTestStore, tempDir } from "../helpers";

const REGISTRY = "127.0.0.1:5000";
const REPOSITORY = "key-tag-test";
/** The provider the program gives a registry without a login (lib/publishing.ts). */
const PROVIDER = { registryAuth: [{ address: `http://${REGISTRY}`, authDisabled: true }] };

function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** The digest the registry serves for `tag` (what a `docker pull` of it gets). */
function registryDigest(tag: string): string {
  const headers = sh("curl", [
    "-fsSI",
    "-H",
    "Accept: application/vnd.docker.distribution.manifest.v2+json",
    `http://${REGISTRY}/v2/${REPOSITORY}/manifests/${tag}`,
  ]);
  return /^docker-content-digest: (\S+)/im.exec(headers)![1];
}

describe("a key tag never moves (real dockerd and registry)", function () {
  const store = sharedTestStore();
  const local: string[] = [];
  after(function () {
    for (const ref of local) spawnSync("docker", ["image", "rm", "--force", ref], { stdio: "ignore" });
  });

  it("keeps the registry's manifest when dockerd lost the image and the step built it again", async function () {
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-dockerd.sh")], { stdio: "inherit" });
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-registry.sh")], { stdio: "inherit" });
    // A lab image of its own: a 1 MiB vendor disk, new at every run, on the test launcher.
    const dir = tempDir("key-tag");
    const raw = path.join(dir, "vendor.img");
    const content = Buffer.alloc(1 << 20);
    content.write(`key tag ${process.pid} ${Date.now()}`);
    fs.writeFileSync(raw, content);
    const sha256 = sh("sha256sum", [raw]).split(" ")[0];
    const disk = await runStep(
      spec("disk-import", REPOSITORY, { source: raw, sha256, format: "raw", provision: null }),
      {
        store,
        definitions: { "disk-import": diskImportStep },
        root: PROJECT_ROOT,
        progress: () => {},
      },
    );
    fs.rmSync(dir, { recursive: true, force: true });
    const launcher = await testLauncher(store);
    const metadata = { ...loadMetadata(path.join(PROJECT_ROOT, "images", "debian-base")), name: REPOSITORY };
    const containerStepSpec = containerSpec(`${REPOSITORY}-container`, REPOSITORY, metadata, {
      disk: disk.key,
      launcher: launcher.key,
    });
    const first = await buildContainer(store, containerStepSpec);
    const source = String(first.outputs.ref);
    const target = `${REGISTRY}/${REPOSITORY}:${first.key}`;
    local.push(source, target);

    /** The program's key-tag Tag then RegistryImage (lib/publishing.ts), performed by the runner. */
    const publish = async (built: StepResult) => {
      await resourcePerformers["docker:index/tag:Tag"].perform({
        sourceImage: built.outputs.ref,
        targetImage: target,
      });
      return resourcePerformers["docker:index/registryImage:RegistryImage"].perform(
        { name: target, keepRemotely: true, triggers: { key: built.key } },
        { provider: PROVIDER },
      );
    };
    const pushed = await publish(first);
    assert.strictEqual(pushed.changed, true, "the first push uploads");
    const digest = String(pushed.outputs.sha256Digest);
    assert.strictEqual(registryDigest(first.key), digest);

    // dockerd loses the image; the step, answered from the store, builds it again: same layers, a new config.
    const before = await inspectImage(source);
    sh("docker", ["image", "rm", "--force", source, target]);
    const again = await buildContainer(store, containerStepSpec);
    assert.ok(again.cached, "answered from the store");
    const rebuilt = await inspectImage(source);
    assert.deepStrictEqual(rebuilt?.layers, before?.layers);
    assert.notStrictEqual(
      rebuilt?.id,
      before?.id,
      "the rebuilt image has a config of its own (else this tests nothing)",
    );

    const republished = await publish(again);
    assert.strictEqual(
      registryDigest(first.key),
      digest,
      "the registry's key tag still names the first manifest",
    );
    assert.strictEqual(republished.outputs.sha256Digest, digest);
    assert.strictEqual(republished.changed, false, "nothing changed in the registry");

    // A moving tag re-pointed is a change, though every layer was there and dockerd had recorded the image's digest
    // (pushed under its other tag first): the registry's tag said otherwise before the push.
    const push = (name: string) =>
      resourcePerformers["docker:index/registryImage:RegistryImage"].perform(
        { name, keepRemotely: true, triggers: { key: again.key } },
        { provider: PROVIDER },
      );
    const moving = `${REGISTRY}/${REPOSITORY}:moving-${process.pid}`;
    const otherKey = `${REGISTRY}/${REPOSITORY}:other-${process.pid}`;
    local.push(moving, otherKey);
    sh("docker", ["tag", source, moving]);
    const movingDigest = String((await push(moving)).outputs.sha256Digest);
    // Another image of the repository (a label more), pushed under its own tag first, then under the moving one.
    execFileSync("docker", ["build", "-q", "-t", otherKey, "-"], {
      input: `FROM ${source}\nLABEL moved="${process.pid}"\n`,
      stdio: ["pipe", "ignore", "pipe"],
    });
    const otherDigest = String((await push(otherKey)).outputs.sha256Digest);
    assert.notStrictEqual(otherDigest, movingDigest);
    sh("docker", ["tag", otherKey, moving]);
    const repointed = await push(moving);
    assert.strictEqual(registryDigest(`moving-${process.pid}`), otherDigest);
    assert.strictEqual(repointed.changed, true, "the moving tag now names another manifest");
    assert.strictEqual((await push(moving)).changed, false, "pushed again: nothing changed");
  });
});
