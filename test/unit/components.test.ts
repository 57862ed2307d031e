import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Archive } from "../../lib/components/archive";
import { Template } from "../../lib/components/template";
import { StepSpec } from "../../lib/steps/step";
import { tempDir } from "../helpers";
import { useMocks, valueOf } from "../mocks";

describe("step components (Pulumi mocks)", () => {
  let dir: string;
  beforeEach(async () => {
    await useMocks();
    dir = tempDir("components");
    fs.writeFileSync(path.join(dir, "a.txt"), "A {{x}}\n");
    fs.writeFileSync(path.join(dir, "b.txt"), "B {{x}}\n");
  });

  /** Builds a small graph: a → bundle, and an unrelated b. */
  function graph(tag: string) {
    const a = new Template(`a${tag}`, { template: path.join(dir, "a.txt"), vars: { x: "1" }, image: "img" });
    const b = new Template(`b${tag}`, {
      template: path.join(dir, "b.txt"),
      vars: { x: "1" },
      image: "other",
    });
    const bundle = new Archive(`bundle${tag}`, { members: { a }, image: "img" });
    return { a, b, bundle };
  }

  it("gives the step command its key as replacement trigger and a spec without absolute paths", async () => {
    const { a } = graph("1");
    const [triggers, stdin] = await Promise.all([valueOf(a.command.triggers), valueOf(a.command.stdin)]);
    assert.deepStrictEqual(triggers, [a.key]);
    const spec = JSON.parse(stdin as string) as StepSpec;
    assert.strictEqual(spec.key, a.key);
    assert.strictEqual(spec.name, "a1");
    assert.ok(!path.isAbsolute(spec.files.template), `relative path, got ${spec.files.template}`);
    assert.strictEqual(path.resolve(spec.files.template), path.join(dir, "a.txt"));
  });

  it("makes a step depend on its parents and carry their keys", async () => {
    const { a, bundle } = graph("2");
    const spec = JSON.parse((await valueOf(bundle.command.stdin)) as string) as StepSpec;
    assert.deepStrictEqual(spec.parents, { a: a.key });
  });

  it("changes a step's key and its descendants' when one byte of its file changes, and nobody else's", () => {
    const before = graph("3");
    fs.writeFileSync(path.join(dir, "a.txt"), "A {{x}}!\n");
    const after = graph("4");
    assert.notStrictEqual(before.a.key, after.a.key);
    assert.notStrictEqual(before.bundle.key, after.bundle.key);
    assert.strictEqual(before.b.key, after.b.key);
  });

  it("rejects bad arguments while the program runs, naming the image, the step and the field", () => {
    assert.throws(
      () => new Template("greet", { template: path.join(dir, "a.txt"), output: "../x", image: "hello" }),
      /^Error: hello: greet: bad argument output: expected a plain file name, got "..\/x"$/,
    );
    assert.throws(
      () => new Archive("empty", { members: {} }),
      /empty: Archive needs at least one member step/,
    );
    assert.throws(
      () => new Template("missing", { template: path.join(dir, "nope.txt") }),
      /cannot read input 'template' at .*nope.txt/,
    );
  });
});
