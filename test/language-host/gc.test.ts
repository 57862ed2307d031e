import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { sha256 } from "../../lib/keys";
import { LocalStore } from "../../lib/store/local";
import { runCli } from "../helpers";
import { projectWith } from "./harness";

/** `hello`: two cheap steps. `tiny`: a 1 MiB raw vendor disk whose container is pushed (key and moving tag). */
const IMAGES = {
  hello: {
    "greeting.txt": "Hello from {{image}}.\n",
    "image.ts": [
      'import * as path from "path";',
      'import { Archive, Template } from "../../lib";',
      "export const greeting = new Template(" +
        '"hello-greeting", { template: path.join(__dirname, "greeting.txt"), vars: { image: "hello" }, image: "hello" });',
      'export const bundle = new Archive("hello-bundle", { members: { greeting }, image: "hello" });',
      "",
    ].join("\n"),
  },
  tiny: {
    "tiny.img": Buffer.alloc(1 << 20),
    "metadata.yaml": "name: tiny\ndescription: A 1 MiB vendor disk, published untested.\n",
    "image.ts": [
      'import * as path from "path";',
      'import { ContainerImage, Qcow2Disk } from "../../lib";',
      'export const disk = Qcow2Disk.import("tiny-disk", {',
      `  source: path.join(__dirname, "tiny.img"), sha256: "${sha256(Buffer.alloc(1 << 20))}", format: "raw",`,
      '  image: "tiny",',
      "});",
      'export const container = new ContainerImage("tiny-container", { image: "tiny", disk, allowUntested: true });',
      "",
    ].join("\n"),
  },
};

function cli(root: string, ...args: string[]) {
  return runCli(root, args, { timeoutMs: 110_000 });
}

describe("antidote-images gc on a stack that pushes", function () {
  let root: string;
  before(function () {
    root = projectWith(IMAGES, { store: ".store", registry: "127.0.0.1:5000" });
  });
  after(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("keeps every step the stack needs (built or not) and removes only what none of them reaches", async function () {
    const up = cli(root, "up", "--stack", "local", "hello");
    assert.strictEqual(up.status, 0, up.stderr);
    const store = new LocalStore(path.join(root, ".store"));
    const needed = fs.readdirSync(path.join(store.location, "artifacts")).sort();
    assert.strictEqual(needed.length, 2, "hello's two steps are built");
    // An artifact of a step no image has any more.
    const stale = sha256(`stale ${Date.now()}`);
    await store.put(
      stale,
      {
        kind: "template",
        name: "gone",
        image: "gone",
        inputs: { kind: "template", version: 1, args: null, files: {}, parents: {} },
      },
      async (dir) => {
        fs.writeFileSync(path.join(dir, "gone.txt"), "gone\n");
        return { primary: "gone.txt" };
      },
    );

    // The plan holds the tiny container's pushes (`docker push:…` records) besides the steps.
    const dryRun = cli(root, "gc", "--stack", "local", "--dry-run");
    assert.strictEqual(dryRun.status, 0, dryRun.stderr);
    assert.strictEqual(dryRun.stdout, `would remove ${stale}\n`);
    assert.match(dryRun.stderr, /kept 2, would remove 1/);
    assert.ok(await store.has(stale), "a dry run removes nothing");

    const gc = cli(root, "gc", "--stack", "local");
    assert.strictEqual(gc.status, 0, gc.stderr);
    assert.strictEqual(gc.stdout, `removed ${stale}\n`);
    assert.deepStrictEqual(fs.readdirSync(path.join(store.location, "artifacts")).sort(), needed);
  });
});
