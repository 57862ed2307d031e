import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { languageHostArgv, languageHostEnv } from "../../lib/engine/language-host";
import { Registration } from "../../lib/engine/monitor";
import { readProject } from "../../lib/engine/project";
import { containsSecret, reveal, Secret } from "../../lib/engine/properties";
import { StepSpec } from "../../lib/steps/step";
import { PROJECT_ROOT, tempDir } from "../helpers";
import { ofType, preview, projectCopy, snapshot } from "./harness";

const COMMAND = "command:local:Command";
const TAG = "docker:index/tag:Tag";
const PUSH = "docker:index/registryImage:RegistryImage";
const UPLOAD = "gcp:storage/bucketObject:BucketObject";

/** Every image's build steps, as the shipped images describe them: what the program must register. */
const STEPS: Record<string, string[]> = {
  kernel: ["kernel"],
  launcher: ["launcher-rootfs", "launcher"],
  hello: ["hello-greeting", "hello-bundle"],
  "debian-base": ["debian-base-rootfs", "debian-base-disk", "debian-base-boot-test", "debian-base-container"],
  frr: ["frr-rootfs", "frr-disk", "frr-boot-test", "frr-container"],
  utility: ["utility-rootfs", "utility-disk", "utility-boot-test", "utility-container"],
};
const LAB_IMAGES = ["debian-base", "frr", "utility"];

function specOf(command: Registration): StepSpec {
  return JSON.parse(String((reveal(command.inputs) as { stdin: string }).stdin)) as StepSpec;
}

function stepsByImage(registrations: Registration[]): Record<string, string[]> {
  const steps: Record<string, string[]> = {};
  for (const spec of ofType(registrations, COMMAND).map(specOf)) (steps[spec.image] ??= []).push(spec.name);
  for (const names of Object.values(steps)) names.sort();
  return steps;
}

function sorted(steps: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(steps).map(([image, names]) => [image, [...names].sort()]));
}

describe("the program under Pulumi's language host (pulumi preview, with this process as the engine)", function () {
  this.timeout(120_000);

  describe("stack local", () => {
    let registrations: Registration[];
    let store: string;
    let projectBefore: Map<string, string>;
    let tmp: string;
    let outputs: Record<string, unknown>;

    before(async () => {
      store = path.join(tempDir("preview-store"), "store");
      projectBefore = snapshot(PROJECT_ROOT);
      tmp = tempDir("preview-tmp");
      const run = await preview("local", { config: { "antidote-images:store": store }, tmpdir: tmp });
      assert.strictEqual(run.exitCode, 0, `${run.errors.join("\n")}\n${run.outputTail.join("\n")}`);
      registrations = run.server.registrations;
      outputs = run.server.stackOutputs();
    });

    it("loads index.ts (Pulumi.yaml's main) and registers every image's step commands", () => {
      assert.deepStrictEqual(stepsByImage(registrations), sorted(STEPS));
      assert.strictEqual(ofType(registrations, COMMAND).length, 17);
    });

    it("gives each step command its component as parent and its input steps' commands as dependencies", () => {
      const commands = ofType(registrations, COMMAND);
      const urnOfKey = new Map(commands.map((c) => [specOf(c).key, c.urn]));
      const components = new Map(registrations.filter((r) => !r.custom).map((r) => [r.urn, r]));
      for (const command of commands) {
        const spec = specOf(command);
        assert.strictEqual(command.name, `${spec.name}-build`);
        const parent = components.get(command.parent ?? "");
        assert.ok(parent?.type.startsWith("antidote:images:"), `${spec.name}: parent ${command.parent}`);
        assert.strictEqual(parent?.name, spec.name);
        for (const [role, key] of Object.entries(spec.parents)) {
          assert.ok(
            command.dependencies.includes(urnOfKey.get(key) ?? "?"),
            `${spec.name}: input '${role}' is a dependency`,
          );
        }
        // The recorded specs of everything it builds on, to rebuild what a store lost.
        for (const key of Object.values(spec.parents))
          assert.ok(spec.ancestors?.[key], `${spec.name}: ancestor`);
      }
    });

    it("tags and pushes every lab image to the local registry after its boot test, with explicit timeouts", () => {
      const byName = new Map(registrations.map((r) => [r.urn, r]));
      for (const image of LAB_IMAGES) {
        for (const which of ["key", "moving"]) {
          const [tag] = ofType(registrations, TAG).filter(
            (r) => r.name === `${image}-container-tag-${which}`,
          );
          const [push] = ofType(registrations, PUSH).filter(
            (r) => r.name === `${image}-container-push-${which}`,
          );
          assert.ok(tag && push, `${image}: tag and push (${which})`);
          assert.match(String(push.inputs.name), new RegExp(`^127\\.0\\.0\\.1:5000/${image}:`));
          assert.strictEqual(push.inputs.authConfig, undefined, "the local registry takes no login");
          // The docker provider refuses a push with neither authConfig nor a registryAuth entry for its registry,
          // and reads the digest over HTTPS unless the address says http://.
          const provider = byName.get((push.provider ?? "").replace(/::[^:]*$/, ""));
          assert.strictEqual(provider?.type, "pulumi:providers:docker", `${push.name}: an explicit provider`);
          assert.deepStrictEqual(JSON.parse(String(provider?.inputs.registryAuth)), [
            { address: "http://127.0.0.1:5000", authDisabled: true },
          ]);
          assert.strictEqual(tag.provider, push.provider);
          assert.ok(push.dependencies.includes(tag.urn));
          const gate = tag.dependencies.map((urn) => byName.get(urn)?.name);
          assert.ok(gate.includes(`${image}-container-build`), `${image}: tag after the container step`);
          assert.ok(gate.includes(`${image}-boot-test-build`), `${image}: tag after the boot test`);
          assert.deepStrictEqual(push.customTimeouts, {
            create: 90 * 60_000,
            update: 90 * 60_000,
            delete: 600_000,
          });
        }
      }
      assert.strictEqual(ofType(registrations, UPLOAD).length, 0, "no bucket on the local stack");
    });

    it("exports every image's steps as stack outputs", () => {
      const images = outputs.images as Record<string, Record<string, unknown>>;
      assert.deepStrictEqual(Object.keys(images).sort(), ["debian-base", "frr", "hello", "utility"]);
      for (const step of STEPS.frr) assert.ok(step in images.frr, `frr exports ${step}`);
    });

    it("runs nothing and writes nothing in a dry run", () => {
      assert.ok(!fs.existsSync(store), "the store was not created");
      assert.deepStrictEqual(snapshot(PROJECT_ROOT), projectBefore, "no file of the project changed");
      assert.deepStrictEqual(fs.readdirSync(tmp), [], "no scratch file or directory");
    });
  });

  describe("stack nightly, its registry password a stand-in secret", () => {
    const password = `stand-in-${process.pid}-${Date.now()}`;
    let registrations: Registration[];

    before(async () => {
      const run = await preview("nightly", {
        config: { "antidote-images:store": path.join(tempDir("preview-store"), "store") },
        env: { ANTIDOTE_REGISTRY_PASSWORD: password },
      });
      assert.strictEqual(run.exitCode, 0, `${run.errors.join("\n")}\n${run.outputTail.join("\n")}`);
      registrations = run.server.registrations;
    });

    it("registers every push, logged in to Docker Hub, and every disk and the kernel package upload", () => {
      assert.deepStrictEqual(stepsByImage(registrations), sorted(STEPS));
      const pushes = ofType(registrations, PUSH);
      assert.deepStrictEqual(
        pushes.map((p) => p.name).sort(),
        LAB_IMAGES.flatMap((i) => [`${i}-container-push-key`, `${i}-container-push-moving`]).sort(),
      );
      for (const push of pushes) {
        assert.match(String(push.inputs.name), /^docker\.io\/antidotelabs\//);
        const auth = push.inputs.authConfig as { address: string; username: string; password: unknown };
        assert.strictEqual(auth.username, "antidotelabs-ci");
        // docker.io serves no registry API: the provider reads the digest from Docker Hub's API host.
        assert.strictEqual(auth.address, "registry-1.docker.io");
        assert.ok(auth.password instanceof Secret, "the password reaches the engine as a secret");
      }
      const uploads = ofType(registrations, UPLOAD);
      const objects = uploads.map((u) => String(u.inputs.name));
      assert.deepStrictEqual(
        objects.filter((o) => o.startsWith("disks/")).map((o) => o.split("/")[1]),
        LAB_IMAGES,
      );
      assert.strictEqual(objects.filter((o) => /^kernels\/[0-9a-f]{64}\.deb$/.test(o)).length, 1);
      for (const upload of uploads) {
        assert.strictEqual(upload.retainOnDelete, true, `${upload.name} is kept on delete`);
        assert.strictEqual(upload.inputs.bucket, "antidote-images-artifacts");
      }
    });

    it("never lets the secret reach the engine in plain", () => {
      for (const registration of registrations) {
        const plain = JSON.stringify(registration.inputs, (_, v: unknown) =>
          v instanceof Secret ? "[secret]" : v,
        );
        assert.ok(!plain.includes(password), `${registration.name} holds the password in plain`);
        if (registration.type !== PUSH) assert.ok(!containsSecret(registration.inputs), registration.name);
      }
    });

    it("fails in one clear line when the secret is missing, saying how to set it", async () => {
      const run = await preview("nightly", {
        config: { "antidote-images:store": path.join(tempDir("preview-store"), "store") },
      });
      assert.notStrictEqual(run.exitCode, 0);
      assert.strictEqual(run.errors.length, 1, run.errors.join("\n"));
      assert.match(
        run.errors[0],
        /^antidote-images:registryPassword: expected the password or token of registry user 'antidotelabs-ci'.*pulumi config set --secret antidote-images:registryPassword <value> --stack nightly.*\$ANTIDOTE_REGISTRY_PASSWORD/,
      );
      assert.strictEqual(ofType(run.server.registrations, COMMAND).length, 0, "nothing registered");
    });
  });

  it("without a main in Pulumi.yaml loads package.json's main (the library) and registers nothing: the defect the main fixes", async () => {
    const root = projectCopy();
    const project = fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8");
    fs.writeFileSync(path.join(root, "Pulumi.yaml"), project.replace(/^main: .*\n/m, ""));
    assert.strictEqual(readProject(root).main, ".");
    const run = await preview("local", {
      root,
      config: { "antidote-images:store": path.join(root, ".store") },
    });
    assert.strictEqual(run.exitCode, 0, run.errors.join("\n"));
    assert.deepStrictEqual(
      run.server.registrations.map((r) => r.type),
      ["pulumi:pulumi:Stack"],
      "only the stack: the program was never loaded",
    );
  });

  it("starts the SDK's runner with pulumi-language-nodejs's arguments and environment", () => {
    const project = readProject(PROJECT_ROOT);
    assert.strictEqual(project.main, "index.ts");
    const argv = languageHostArgv({
      runPath: "/sdk/cmd/run",
      monitor: "127.0.0.1:1",
      engine: "127.0.0.1:2",
      project,
      stack: "nightly",
      dryRun: true,
      parallel: 4,
    });
    assert.deepStrictEqual(argv, [
      "/sdk/cmd/run",
      "--monitor",
      "127.0.0.1:1",
      "--engine",
      "127.0.0.1:2",
      "--organization",
      "organization",
      "--project",
      "antidote-images",
      "--stack",
      "nightly",
      "--pwd",
      PROJECT_ROOT,
      "--dry-run",
      "--parallel",
      "4",
      "index.ts",
    ]);
    const env = languageHostEnv({
      project,
      config: { "antidote-images:registry": "r", "antidote-images:registryPassword": "p" },
      secretKeys: ["antidote-images:registryPassword"],
    });
    assert.deepStrictEqual(JSON.parse(env.PULUMI_CONFIG), {
      "antidote-images:config:registry": "r",
      "antidote-images:config:registryPassword": "p",
    });
    assert.deepStrictEqual(JSON.parse(env.PULUMI_CONFIG_SECRET_KEYS), ["antidote-images:registryPassword"]);
    assert.strictEqual(env.PULUMI_NODEJS_TYPESCRIPT, "true");
  });
});
