import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { RunReport } from "../../lib/runner/local-runner";
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
  const commands = ["up", "plan", "vm", "diff", "catalog", "lesson", "gc", "step"];
  for (const command of commands) {
    it(`${command} -h prints the command's help, as --help does`, function () {
      this.timeout(120_000);
      const run = cli([command, "-h"]);
      assert.strictEqual(run.status, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^usage: antidote-images ${command}`));
    });
  }

  it("takes -h after an image name as help too, and refuses another single-dash option", () => {
    const help = cli(["up", "frr", "-h"]);
    assert.strictEqual(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: antidote-images up/);
    const typo = cli(["plan", "-j", "2"]);
    assert.strictEqual(typo.status, 2);
    assert.match(
      typo.stderr,
      /^antidote-images plan: unknown option -j \(known: --stack, --config, --json, --help, -h\)/,
    );
  });

  it("--version prints the package's version", () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as {
      version: string;
    };
    const run = cli(["--version"]);
    assert.strictEqual(run.status, 0, run.stderr);
    assert.strictEqual(run.stdout, `${version}\n`);
  });

  it("plan --json prints the whole plan as one JSON document on stdout: every step, each image's step keys", function () {
    this.timeout(300_000);
    const run = cli(["plan", "--json", "frr"]);
    assert.strictEqual(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as RunReport; // nothing before or after the document
    const shown = [...run.stderr.matchAll(/^\+\s+\S+\s+\S+\s+(\S+)\s+would build/gm)].map((m) => m[1]);
    const names = report.steps.map((s) => s.name);
    assert.deepStrictEqual([...names].sort(), [...shown].sort(), "the steps the progress lines show");
    for (const step of [
      "kernel",
      "debian-base-rootfs",
      "frr-rootfs",
      "frr-container",
      "frr-container-push-key",
    ]) {
      assert.ok(names.includes(step), `${step} in ${names.join(", ")}`);
    }
    assert.match(run.stderr, new RegExp(`^plan: ${report.steps.length} to build, 0 cached, 0 skipped$`, "m"));
    const frr = (report.outputs as { images: Record<string, Record<string, { key: string }>> }).images.frr;
    const keys = Object.fromEntries(report.steps.map((s) => [s.name, s.key]));
    assert.deepStrictEqual(
      Object.fromEntries(Object.entries(frr ?? {}).map(([name, output]) => [name, output.key])),
      Object.fromEntries(
        ["frr-rootfs", "kernel", "frr-disk", "frr-boot-test", "frr-container"].map((n) => [n, keys[n]]),
      ),
      "the stack outputs name each step of the image with its key, known before anything builds",
    );
  });

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
