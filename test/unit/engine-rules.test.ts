import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Json, stepKey } from "../../lib/keys";
import { parseDuration } from "../../lib/engine/monitor";
import { resourcePerformers } from "../../lib/runner/docker-resources";
import { loadStack, overrideConfig } from "../../lib/runner/stack";
import { archiveStep } from "../../lib/steps/archive";
import { runStep } from "../../lib/steps/run";
import { StepSpec } from "../../lib/steps/step";
import { templateStep } from "../../lib/steps/template";
import { acquireJobSlot, jobLimit } from "../../lib/store/job-slots";
import { LocalStore } from "../../lib/store/local";
import { tempDir } from "../helpers";

/** Where the Pulumi engine's behaviour differs from a plain run: the rules the steps and the runner keep. */

function spec(kind: string, name: string, args: Json, files: Record<string, string>, parents = {}): StepSpec {
  const definition = kind === "template" ? templateStep : archiveStep;
  const key = stepKey({ kind, version: definition.version, args, files, parents });
  return { kind, name, image: "hello", args, files, parents, key };
}

const definitions = { template: templateStep, archive: archiveStep } as never;

describe("engine rules: build slots", () => {
  it("holds steps started together to the machine's limit, across processes", async () => {
    const dir = tempDir("slots");
    const first = await acquireJobSlot(dir, 2);
    const second = await acquireJobSlot(dir, 2);
    let taken = false;
    let waited = false;
    const third = acquireJobSlot(dir, 2, { pollMs: 20, onWait: () => (waited = true) }).then((release) => {
      taken = true;
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(waited && !taken, "a third step waits while two build");
    second();
    (await third)();
    assert.ok(taken, "and takes the slot that was freed");
    first();
  });

  it("takes back the slot of a builder that died (SIGKILL)", async () => {
    const dir = tempDir("slots");
    const holder = spawn(
      process.execPath,
      [
        "-r",
        "ts-node/register/transpile-only",
        "-e",
        `require(${JSON.stringify(path.resolve(__dirname, "../../lib/store/job-slots"))}).acquireJobSlot(${JSON.stringify(dir)}, 1).then(() => { console.log("held"); setInterval(() => {}, 1000); })`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    holder.kill("SIGKILL");
    await new Promise((resolve) => holder.once("close", resolve));
    const release = await Promise.race([
      acquireJobSlot(dir, 1, { pollMs: 20 }),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("the dead holder's slot was kept")), 5000),
      ),
    ]);
    release();
  });

  it("reads the limit from $ANTIDOTE_JOBS, and names the variable when it is wrong", () => {
    assert.strictEqual(jobLimit({}), 2);
    assert.strictEqual(jobLimit({ ANTIDOTE_JOBS: "5" }), 5);
    assert.throws(
      () => jobLimit({ ANTIDOTE_JOBS: "many" }),
      /\$ANTIDOTE_JOBS: expected a positive whole number.*'many'/,
    );
  });
});

describe("engine rules: a parent the store lost", () => {
  let root: string;
  let greeting: StepSpec;
  let bundle: StepSpec;

  beforeEach(() => {
    root = tempDir("lost-parent");
    fs.writeFileSync(path.join(root, "greeting.txt"), "Hello from {{image}}.\n");
    greeting = spec(
      "template",
      "hello-greeting",
      { output: "greeting.txt", vars: { image: "hello" } },
      {
        template: path.join(root, "greeting.txt"),
      },
    );
    bundle = spec("archive", "hello-bundle", { output: "hello.tar.gz" }, {}, { greeting: greeting.key });
  });

  it("is built again from the spec the step carries (Pulumi's state still says it was built)", async () => {
    const store = new LocalStore(path.join(root, "store"));
    const lines: string[] = [];
    const result = await runStep(
      { ...bundle, ancestors: { [greeting.key]: greeting } },
      { store, definitions, root, progress: (l) => lines.push(l) },
    );
    assert.strictEqual(result.cached, false);
    assert.ok(await store.has(greeting.key), "the lost input is in the store again");
    assert.ok(
      lines.some((l) => /input 'greeting' \(hello-greeting\) is not in the store: building it again/.test(l)),
    );
  });

  it("without a recorded spec, fails naming the input, the store and the command that builds it", async () => {
    const store = new LocalStore(path.join(root, "store"));
    await assert.rejects(
      runStep(bundle, { store, definitions, root, progress: () => {} }),
      new RegExp(
        `hello: step hello-bundle \\(archive\\): its input 'greeting' \\(artifact ${greeting.key}\\) is not in the ` +
          `store .*store; build it with 'antidote-images up hello' on this host`,
      ),
    );
  });

  it("is not needed when the store has the step itself", async () => {
    const store = new LocalStore(path.join(root, "store"));
    await runStep(
      { ...bundle, ancestors: { [greeting.key]: greeting } },
      { store, definitions, root, progress: () => {} },
    );
    await store.gc([bundle.key]);
    fs.rmSync(path.join(root, "store", "artifacts", greeting.key), { recursive: true, force: true });
    const again = await runStep(bundle, { store, definitions, root, progress: () => {} });
    assert.strictEqual(again.cached, true);
  });
});

describe("engine rules: publishing", () => {
  it("refuses a push with neither authConfig nor a registryAuth entry for its registry, as the docker provider does", async () => {
    const push = resourcePerformers["docker:index/registryImage:RegistryImage"];
    await assert.rejects(
      push.perform({ name: "127.0.0.1:5000/frr:latest" }),
      /no auth config found for registry 127\.0\.0\.1:5000/,
    );
    await assert.rejects(
      push.perform(
        { name: "127.0.0.1:5000/frr:latest" },
        {
          provider: {
            registryAuth: JSON.stringify([{ address: "http://10.0.0.1:5000", authDisabled: true }]),
          },
        },
      ),
      /no auth config found for registry 127\.0\.0\.1:5000/,
    );
  });

  it("reads customTimeouts as Go durations", () => {
    assert.strictEqual(parseDuration("90m"), 90 * 60_000);
    assert.strictEqual(parseDuration("1h30m"), 90 * 60_000);
    assert.strictEqual(parseDuration(""), undefined);
    assert.throws(() => parseDuration("ninety"), /not a duration: 'ninety'/);
  });
});

describe("engine rules: secrets for the local runner", () => {
  function stackWith(config: string): string {
    const root = tempDir("secret-stack");
    fs.writeFileSync(
      path.join(root, "Pulumi.yaml"),
      "name: antidote-images\nmain: index.ts\nruntime: nodejs\n",
    );
    fs.writeFileSync(path.join(root, "Pulumi.ci.yaml"), `config:\n${config}`);
    return root;
  }

  it("takes a secure: value from its documented variable, as a secret", () => {
    const root = stackWith("  antidote-images:registryPassword:\n    secure: AAABAKc2ZXJ0\n");
    const stack = loadStack(root, "ci", { ANTIDOTE_REGISTRY_PASSWORD: "token" });
    assert.strictEqual(stack.config["antidote-images:registryPassword"], "token");
    assert.deepStrictEqual(stack.secretKeys, ["antidote-images:registryPassword"]);
  });

  it("names the variable when a secure: value has none", () => {
    const root = stackWith("  antidote-images:registryPassword:\n    secure: AAABAKc2ZXJ0\n");
    assert.throws(
      () => loadStack(root, "ci", {}),
      /stack 'ci': antidote-images:registryPassword is a secret \(secure: in Pulumi\.ci\.yaml\).*\$ANTIDOTE_REGISTRY_PASSWORD/,
    );
  });

  it("sets --config values over the stack file's for the run, without touching the file, and refuses a secret there", () => {
    const root = stackWith("  antidote-images:registry: docker.io/antidotelabs\n");
    const before = fs.readFileSync(path.join(root, "Pulumi.ci.yaml"), "utf8");
    const stack = loadStack(root, "ci", {});
    overrideConfig(stack, [
      "antidote-images:registry=127.0.0.1:5443/nightly",
      "bucket=b=1",
      'images=["hello"]',
    ]);
    assert.strictEqual(stack.config["antidote-images:registry"], "127.0.0.1:5443/nightly");
    assert.strictEqual(
      stack.config["antidote-images:bucket"],
      "b=1",
      "a key without namespace is the project's",
    );
    assert.strictEqual(stack.config["antidote-images:images"], '["hello"]');
    assert.strictEqual(fs.readFileSync(path.join(root, "Pulumi.ci.yaml"), "utf8"), before);
    assert.throws(
      () => overrideConfig(stack, ["registryPassword=hunter2"]),
      (err: Error) =>
        /--config antidote-images:registryPassword: a secret is never given on the command line.*\$ANTIDOTE_REGISTRY_PASSWORD/.test(
          err.message,
        ) && !err.message.includes("hunter2"),
    );
    assert.throws(() => overrideConfig(stack, ["=x"]), /--config =x: expected key=value/);
  });
});
