import * as pulumi from "@pulumi/pulumi";
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { ContainerImage } from "../../lib/components/container-image";
import { Launcher } from "../../lib/components/launcher";
import { Template } from "../../lib/components/template";
import { loadMetadata } from "../../lib/metadata/metadata";
import { CONSOLE_PORT, containerDockerfile, containerStep } from "../../lib/steps/container";
import { PROJECT_ROOT, tempDir } from "../helpers";
import { RecordedResource, useMocks, valueOf } from "../mocks";

const PASSWORD = "s3cret-registry-password";
const NIGHTLY = {
  "antidote-images:registry": "docker.io/antidote",
  "antidote-images:registryUsername": "antidote-bot",
  "antidote-images:registryPassword": PASSWORD,
  "antidote-images:bucket": "antidote-disks",
};
const metadata = loadMetadata(path.join(PROJECT_ROOT, "images", "debian-base"));

/** Stand-ins for the disk, boot test and kernel: cheap steps with keys, as the container only reads keys here. */
function parents(tag: string) {
  const dir = tempDir("container-unit");
  const step = (name: string) => {
    const file = path.join(dir, `${name}.txt`);
    fs.writeFileSync(file, `${name} ${tag}`);
    return new Template(`${name}-${tag}`, { template: file, image: "debian-base" });
  };
  return { disk: step("disk"), bootTest: step("boot-test"), kernel: step("kernel") };
}

/** Lets the mock monitor register what the program created (resources register asynchronously). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
const ofType = (resources: RecordedResource[], type: string) => resources.filter((r) => r.type === type);
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";

describe("ContainerImage (Pulumi mocks)", () => {
  it("nightly: pushes the key and moving tags to Docker Hub and uploads disk and kernel under content names", async () => {
    const resources = await useMocks(NIGHTLY, "nightly");
    const { disk, bootTest, kernel } = parents("n1");
    const launcher = new Launcher("launcher-n1");
    const image = new ContainerImage("debian-base-container", {
      image: "debian-base",
      disk,
      bootTest,
      kernel,
      launcher,
      metadata,
    });
    await settle();

    const tags = ofType(resources, "docker:index/tag:Tag");
    assert.deepStrictEqual(
      tags.map((t) => [t.name, t.inputs.targetImage]),
      [
        ["debian-base-container-tag-key", `docker.io/antidote/debian-base:${image.key}`],
        ["debian-base-container-tag-moving", "docker.io/antidote/debian-base:latest"],
      ],
    );
    const pushes = ofType(resources, "docker:index/registryImage:RegistryImage");
    assert.deepStrictEqual(
      pushes.map((p) => [p.name, p.inputs.name, p.inputs.keepRemotely]),
      [
        ["debian-base-container-push-key", `docker.io/antidote/debian-base:${image.key}`, true],
        ["debian-base-container-push-moving", "docker.io/antidote/debian-base:latest", true],
      ],
    );
    const objects = ofType(resources, "gcp:storage/bucketObject:BucketObject").sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    assert.deepStrictEqual(
      objects.map((o) => [o.name, o.inputs.bucket, o.inputs.name]),
      [
        ["debian-base-container-disk-upload", "antidote-disks", `disks/debian-base/${disk.key}.qcow2`],
        ["debian-base-container-kernel-upload", "antidote-disks", `kernels/${kernel.key}.deb`],
      ],
    );
    assert.strictEqual(image.diskObject, `disks/debian-base/${disk.key}.qcow2`);
    assert.strictEqual(image.kernelObject, `kernels/${kernel.key}.deb`);
  });

  it("marks the registry password secret and keeps it out of every other resource", async () => {
    const resources = await useMocks(
      { ...NIGHTLY, "antidote-images:registryPassword": "placeholder" },
      "nightly",
    );
    // A `secure:` value arrives as a secret config key.
    pulumi.runtime.setAllConfig({ ...NIGHTLY }, ["antidote-images:registryPassword"]);
    const { disk, bootTest } = parents("s1");
    new ContainerImage("debian-base-container", {
      image: "debian-base",
      disk,
      bootTest,
      launcher: new Launcher("launcher-s1"),
      metadata,
    });
    await settle();
    const pushes = ofType(resources, "docker:index/registryImage:RegistryImage");
    assert.strictEqual(pushes.length, 2);
    for (const push of pushes) {
      const auth = push.inputs.authConfig as Record<string, unknown>;
      assert.ok(
        auth && SECRET_SIG_KEY in auth,
        `authConfig of ${push.name} is a secret: ${JSON.stringify(auth)}`,
      );
    }
    for (const other of resources.filter((r) => r.type !== "docker:index/registryImage:RegistryImage")) {
      assert.ok(
        !JSON.stringify(other.inputs).includes(PASSWORD),
        `${other.type} ${other.name} holds the password`,
      );
    }
  });

  it("publishes nothing without a boot test, and builds an untested image only when asked", async () => {
    await useMocks(NIGHTLY, "nightly");
    const { disk } = parents("u1");
    assert.throws(
      () =>
        new ContainerImage("frr-container", { image: "frr", disk, metadata, launcher: new Launcher("l-u1") }),
      /^Error: frr: frr-container: bad argument bootTest: expected the disk's BootTest \(or allowUntested: true\)/,
    );
    const untested = new ContainerImage("vendor-container", {
      image: "vendor",
      disk,
      metadata,
      allowUntested: true,
      launcher: new Launcher("l-u2"),
    });
    const spec = JSON.parse((await valueOf(untested.command.stdin)) as string);
    assert.strictEqual(spec.args.untested, true);
    assert.deepStrictEqual(Object.keys(spec.parents).sort(), ["disk", "launcher"]);
  });

  it("makes the boot test a parent of the image, so a failed or missing test leaves nothing to push", async () => {
    const resources = await useMocks(NIGHTLY, "nightly");
    const { disk, bootTest } = parents("f1");
    const image = new ContainerImage("debian-base-container", {
      image: "debian-base",
      disk,
      bootTest,
      metadata,
      launcher: new Launcher("l-f1"),
    });
    const spec = JSON.parse((await valueOf(image.command.stdin)) as string);
    assert.strictEqual(spec.parents.bootTest, bootTest.key);
    // The mocks give commands no stdout, as the runner does for a step that failed: the image to push is unknown
    // and so every push's source is.
    assert.strictEqual(await (image.localImage as unknown as { isKnown: Promise<boolean> }).isKnown, false);
    await settle();
    const tags = ofType(resources, "docker:index/tag:Tag");
    assert.strictEqual(tags.length, 2);
    for (const tag of tags)
      assert.ok(pulumi.isUnknown(tag.inputs.sourceImage), `${tag.name} has an unknown source`);
  });

  it("makes the disk's kernel a parent when given (a direct boot), and none otherwise (firmware)", async () => {
    await useMocks(NIGHTLY, "nightly");
    const { disk, bootTest, kernel } = parents("k1");
    const launcher = new Launcher("l-k1");
    const common = { image: "debian-base", disk, bootTest, metadata, launcher };
    const direct = new ContainerImage("direct-container", { ...common, kernel });
    const firmware = new ContainerImage("firmware-container", common);
    const spec = async (image: ContainerImage) => JSON.parse((await valueOf(image.command.stdin)) as string);
    assert.strictEqual((await spec(direct)).parents.kernel, kernel.key);
    assert.ok(!("kernel" in (await spec(firmware)).parents));
    // A snapshot is of a direct boot: on by default with a kernel, off without, refused without when asked for.
    assert.strictEqual((await spec(direct)).args.snapshot, true);
    assert.strictEqual((await spec(firmware)).args.snapshot, false);
    const cold = new ContainerImage("cold-container", { ...common, kernel, snapshot: false });
    assert.strictEqual((await spec(cold)).args.snapshot, false);
    assert.throws(
      () => new ContainerImage("snap-container", { ...common, snapshot: true }),
      /^Error: debian-base: snap-container: bad argument snapshot: expected a kernel to go with it/,
    );
  });

  it("local stack: pushes to 127.0.0.1:5000 by default, uploads nothing; registry none pushes nothing", async () => {
    let resources = await useMocks({}, "local");
    const { disk, bootTest } = parents("l1");
    new ContainerImage("debian-base-container", {
      image: "debian-base",
      disk,
      bootTest,
      metadata,
      launcher: new Launcher("l-l1"),
    });
    await settle();
    assert.deepStrictEqual(
      ofType(resources, "docker:index/registryImage:RegistryImage").map(
        (p) => String(p.inputs.name).split(":")[0],
      ),
      ["127.0.0.1", "127.0.0.1"],
    );
    assert.strictEqual(ofType(resources, "gcp:storage/bucketObject:BucketObject").length, 0);

    resources = await useMocks({ "antidote-images:registry": "none" }, "local");
    const more = parents("l2");
    new ContainerImage("debian-base-container", {
      image: "debian-base",
      ...more,
      metadata,
      launcher: new Launcher("l-l2"),
    });
    await settle();
    assert.strictEqual(ofType(resources, "docker:index/tag:Tag").length, 0);
  });
});

describe("lab image Dockerfile", () => {
  const dockerfile = containerDockerfile({
    base: "antidote-images/launcher:abc",
    metadata,
    key: "f".repeat(64),
    diskSha256: "d".repeat(64),
    bootTest: "b".repeat(64),
    healthStartSeconds: 600,
  });

  it("adds only the disk as a layer on the launcher", () => {
    const lines = dockerfile.split("\n");
    assert.strictEqual(lines[0], "FROM antidote-images/launcher:abc");
    assert.deepStrictEqual(
      lines.filter((l) => /^(COPY|ADD|RUN)\b/.test(l)),
      ["COPY . /"],
    );
  });

  it("labels the image from its metadata and sets the launch script's defaults", () => {
    assert.match(dockerfile, /org\.opencontainers\.image\.title="debian-base"/);
    assert.match(
      dockerfile,
      /dev\.antidote\.ports="\[{\\"port\\":22,\\"protocol\\":\\"tcp\\",\\"name\\":\\"ssh\\"}\]"/,
    );
    assert.match(dockerfile, /dev\.antidote\.interfaces=.*eth1/);
    assert.match(dockerfile, /ANTIDOTE_NICS="2"/);
    assert.match(dockerfile, /ANTIDOTE_PORTS="tcp:22"/);
    assert.match(dockerfile, /ANTIDOTE_MEMORY_MIB="512"/);
    assert.match(dockerfile, /HEALTHCHECK .*--start-period=600s .*antidote-health/);
    assert.match(dockerfile, /ENTRYPOINT \["\/usr\/bin\/tini", "--", "\/usr\/local\/bin\/antidote-launch"\]/);
  });

  it("bakes the disk's kernel command line for a direct boot only when the image holds the kernel", () => {
    const direct = containerDockerfile({
      base: "antidote-images/launcher:abc",
      metadata,
      key: "f".repeat(64),
      diskSha256: "d".repeat(64),
      healthStartSeconds: 600,
      kernelCmdline: "root=PARTUUID=0000 ro console=ttyS0,115200",
    });
    assert.match(direct, /ANTIDOTE_KERNEL="\/disk\/vmlinuz"/);
    assert.match(direct, /ANTIDOTE_KERNEL_CMDLINE="root=PARTUUID=0000 ro console=ttyS0,115200"/);
    assert.doesNotMatch(
      dockerfile,
      /ANTIDOTE_KERNEL/,
      "no kernel, no direct boot: the launcher boots by firmware",
    );
  });

  it("checks health every 2 s: the check only reads the verdict the launcher records", () => {
    assert.match(dockerfile, /HEALTHCHECK --interval=2s /);
  });

  it("exposes the serial console's port and refuses metadata that forwards a VM port on it", () => {
    assert.match(dockerfile, /^EXPOSE 22\/tcp 5000\/tcp$/m);
    assert.match(dockerfile, /ANTIDOTE_CONSOLE_PORT="5000"/);
    const args = {
      repository: "antidote-images/x",
      untested: false,
      healthStartSeconds: 600,
      snapshot: false,
    };
    const clash = {
      ...metadata,
      ports: [...metadata.ports, { port: CONSOLE_PORT, protocol: "tcp", name: "web" }],
    };
    assert.throws(
      () => containerStep.parseArgs({ ...args, metadata: clash } as never),
      /metadata\.ports: expected no port 5000\/tcp: the container serves the VM's serial console there/,
    );
    const udp = {
      ...metadata,
      ports: [...metadata.ports, { port: CONSOLE_PORT, protocol: "udp", name: "syslog" }],
    };
    assert.doesNotThrow(() => containerStep.parseArgs({ ...args, metadata: udp } as never));
    assert.throws(
      () => containerStep.parseArgs({ ...args, metadata, snapshot: "yes" } as never),
      /snapshot: expected true or false/,
    );
  });
});
