import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { runCli } from "../helpers";
import { projectWith } from "./harness";

const HELLO = {
  "greeting.txt": "Hello.\n",
  "image.ts": [
    'import * as path from "path";',
    'import { Template } from "../../lib";',
    'export const greeting = new Template("hello-greeting", { template: path.join(__dirname, "greeting.txt"), image: "hello" });',
    "",
  ].join("\n"),
};

/** `antidote-images <args>` in `root`, killed (SIGKILL: a spinning process may ignore SIGTERM) after 60 s. */
function cli(root: string, ...args: string[]) {
  const started = Date.now();
  const run = runCli(root, args, { timeoutMs: 60_000, killSignal: "SIGKILL" });
  return { ...run, seconds: (Date.now() - started) / 1000 };
}

describe("a store path that cannot be a store", function () {
  const roots: string[] = [];
  after(function () {
    for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
  });

  for (const [what, store] of [
    ["under /proc (mkdir fails with ENOENT below an existing parent)", "/proc/antidote-images-test/store"],
    ["below a regular file", "Pulumi.yaml/store"],
  ]) {
    for (const command of ["plan", "up"]) {
      it(`${command}: ${what} fails at once, naming antidote-images:store, the path and what was expected`, function () {
        const root = projectWith({ hello: HELLO }, { store });
        roots.push(root);
        const run = cli(root, command, "--stack", "local");
        assert.strictEqual(run.signal, null, `${command} did not end within 60 s (${run.signal})`);
        assert.strictEqual(run.status, 1, run.stderr);
        const line = `antidote-images ${command}: antidote-images:store (stacks/Pulumi.local.yaml): expected a directory the artifact store can be created and written in, got '${path.resolve(fs.realpathSync(root), store)}'`;
        assert.ok(run.stderr.startsWith(line), `${run.stderr}\nshould start with\n${line}`);
        assert.strictEqual(run.stderr.trim().split("\n").length, 1, run.stderr);
        assert.ok(!fs.existsSync(path.join(root, ".store")));
      });
    }
  }
});
