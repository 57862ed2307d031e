import * as assert from "assert";
import * as fs from "fs";
import { runCli } from "../helpers";
import { projectWith } from "./harness";

/**
 * `a`: a command that takes 4 s, and one that depends on it. `b`: its image.ts fails 1.5 s after it loaded, while
 * `a-slow` runs and before `a-after` can start.
 */
const IMAGES = {
  a: {
    "image.ts": [
      'import * as command from "@pulumi/command";',
      'export const slow = new command.local.Command("a-slow", { create: "sleep 4; echo slow" });',
      'export const after = new command.local.Command("a-after", { create: "echo after" }, { dependsOn: [slow] });',
      "",
    ].join("\n"),
  },
  b: {
    "image.ts": 'setTimeout(() => {\n  throw new Error("b is broken");\n}, 1500);\nexport {};\n',
  },
};

describe("up when the program fails while steps run", function () {
  let root: string;
  before(function () {
    root = projectWith(IMAGES, { store: ".store", registry: "none" });
  });
  after(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("lets the running step finish, starts nothing after the failure, and sums up", function () {
    const run = runCli(root, ["up", "--stack", "local"], { timeoutMs: 100_000 });
    assert.strictEqual(run.status, 1, run.stderr);
    const lines = run.stderr.trim().split("\n");
    assert.ok(
      lines.some((l) => /^✓ .* a-slow +built in /.test(l)),
      `the running command finished:\n${run.stderr}`,
    );
    assert.ok(!lines.some((l) => /a-after +(building|built)/.test(l)), `a-after started:\n${run.stderr}`);
    const summary = lines.findIndex((l) => l.startsWith("up: "));
    assert.ok(summary >= 0, `a summary:\n${run.stderr}`);
    assert.match(lines[summary], /^up: 1 built, 0 cached, 0 failed, 1 skipped/);
    // The summary, then the program's error (with its stack: a plain Error), then what was done and not started.
    assert.strictEqual(lines[summary + 1], "antidote-images up: the program failed: Error: b is broken");
    assert.deepStrictEqual(lines.slice(-2), ["  done: a-slow (built)", "  not started: a-after"]);
  });
});
