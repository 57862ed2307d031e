import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { canonicalJson, diffSummaries, stepKey, summarizeInputs } from "../../lib/keys";
import { tempDir } from "../helpers";

describe("keys", () => {
  const base = { kind: "rootfs", version: 1, args: { suite: "bookworm", packages: ["a", "b"] }, parents: {} };

  it("serializes objects canonically, whatever the key order", () => {
    assert.strictEqual(
      canonicalJson({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: null } }),
      canonicalJson({ a: { c: null, d: [3, { x: 2, y: 1 }] }, b: 1 }),
    );
    assert.notStrictEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });

  it("changes when one byte of an input file changes", () => {
    const dir = tempDir("keys");
    fs.writeFileSync(path.join(dir, "install.sh"), "echo hello\n");
    const before = stepKey({ ...base, files: { install: path.join(dir, "install.sh") } });
    fs.writeFileSync(path.join(dir, "install.sh"), "echo hellp\n");
    const after = stepKey({ ...base, files: { install: path.join(dir, "install.sh") } });
    assert.notStrictEqual(before, after);
    assert.match(before, /^[0-9a-f]{64}$/);
  });

  it("does not depend on where the checkout is", () => {
    const [a, b] = [tempDir("checkout-a"), tempDir("checkout-b")];
    for (const dir of [a, b]) fs.writeFileSync(path.join(dir, "install.sh"), "apt-get install -y frr\n");
    assert.strictEqual(
      stepKey({ ...base, files: { install: "install.sh" } }, a),
      stepKey({ ...base, files: { install: path.join(b, "install.sh") } }, "/somewhere/else"),
    );
  });

  it("changes with the kind, the version, any argument and any parent key", () => {
    const key = (over: object) => stepKey({ ...base, files: {}, ...over });
    const keys = [
      key({}),
      key({ kind: "kernel" }),
      key({ version: 2 }),
      key({ args: { suite: "trixie", packages: ["a", "b"] } }),
      key({ args: { suite: "bookworm", packages: ["b", "a"] } }),
      key({ parents: { base: "0".repeat(64) } }),
      key({ parents: { base: "1".repeat(64) } }),
    ];
    assert.strictEqual(new Set(keys).size, keys.length);
  });

  it("names the role and path of an input file that cannot be read", () => {
    assert.throws(
      () => stepKey({ ...base, files: { install: "/nonexistent/install.sh" } }),
      /rootfs: cannot read input 'install' at \/nonexistent\/install.sh/,
    );
  });

  it("tells which files, arguments and parents moved", () => {
    const dir = tempDir("diff");
    fs.writeFileSync(path.join(dir, "a"), "1");
    fs.writeFileSync(path.join(dir, "b"), "1");
    const before = summarizeInputs(
      { ...base, files: { a: "a", b: "b" }, parents: { base: "0".repeat(64) } },
      dir,
    );
    fs.writeFileSync(path.join(dir, "b"), "2");
    const after = summarizeInputs(
      {
        ...base,
        args: { suite: "trixie", packages: ["a", "b"] },
        files: { a: "a", b: "b" },
        parents: { base: "1".repeat(64) },
      },
      dir,
    );
    const changes = diffSummaries(before, after).map((c) => `${c.what}:${c.name}`);
    assert.deepStrictEqual(changes, ["file:b", "arg:suite", "parent:base"]);
  });
});
