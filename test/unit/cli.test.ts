import * as assert from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import { PROJECT_ROOT, tempDir } from "../helpers";

/** `antidote-images <args>` as a user runs it, with `input` on stdin and a store of its own. */
function cli(args: string[], input = "") {
  const run = spawnSync(process.execPath, [path.join(PROJECT_ROOT, "bin", "antidote-images.js"), ...args], {
    cwd: PROJECT_ROOT,
    input,
    encoding: "utf8",
    env: { ...process.env, ANTIDOTE_STORE: tempDir("cli-store") },
    timeout: 60_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe("the antidote-images command", () => {
  describe("step", () => {
    const key = "0".repeat(64);
    const cases: [string, string, RegExp][] = [
      ["null", "null", /got null$/m],
      ["a number", "5", /got a number$/m],
      ["a list", '[{"kind": "template"}]', /got a list$/m],
      ["a string", '"template"', /got a string$/m],
      [
        "an object without files",
        JSON.stringify({ kind: "template", name: "t", image: "i", key, args: {}, parents: {} }),
        /the step spec's 'files' must be an object of strings/,
      ],
    ];
    for (const [what, input, message] of cases) {
      it(`refuses a spec that is ${what} with a usage error, not a crash`, () => {
        const run = cli(["step"], input);
        assert.strictEqual(run.status, 2, run.stderr);
        assert.match(run.stderr, /^antidote-images step: the step spec/);
        assert.match(run.stderr, message);
        assert.doesNotMatch(run.stderr, /Cannot read|TypeError/);
        assert.strictEqual(run.stdout, "");
      });
    }
  });
});
