import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { RunReport } from "../../lib/runner/local-runner";
import { debianBase } from "../fixtures/rootfs";
import { PROJECT_ROOT, runCli, sharedTestStore, tempDir } from "../helpers";

/**
 * A copy of the project in a temp folder (the library, bin and node_modules linked, images and stacks copied), so
 * the test can edit image files and use its own store without touching the checkout.
 */
function scratchProject(): string {
  const root = tempDir("project");
  for (const link of ["lib", "bin", "node_modules"])
    fs.symlinkSync(path.join(PROJECT_ROOT, link), path.join(root, link));
  for (const file of ["Pulumi.yaml", "index.ts", "tsconfig.json"])
    fs.copyFileSync(path.join(PROJECT_ROOT, file), path.join(root, file));
  fs.cpSync(path.join(PROJECT_ROOT, "images", "hello"), path.join(root, "images", "hello"), {
    recursive: true,
  });
  fs.mkdirSync(path.join(root, "stacks"));
  fs.writeFileSync(
    path.join(root, "stacks", "Pulumi.local.yaml"),
    "config:\n  antidote-images:store: .store\n",
  );
  return root;
}

function cli(root: string, ...args: string[]) {
  // Long enough for a step that waits for a build slot other tests hold.
  const run = runCli(root, args, { timeoutMs: 600_000 });
  const report =
    args.includes("--json") && run.stdout.trim() ? (JSON.parse(run.stdout) as RunReport) : undefined;
  return { status: run.status, stderr: run.stderr, report };
}

/** Every non-blank line of `text` that appears more than once. */
function repeatedLines(text: string): string[] {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  return [...new Set(lines.filter((l, i) => lines.indexOf(l) !== i))];
}

function statuses(report: RunReport | undefined): Record<string, string> {
  return Object.fromEntries((report?.steps ?? []).map((s) => [s.name, s.status]));
}

describe("antidote-images up and plan (the local runner)", () => {
  let root: string;
  before(() => {
    root = scratchProject();
  });

  it("builds hello from scratch into the stack's store", () => {
    const { status, stderr, report } = cli(root, "up", "--stack", "local", "--json");
    assert.strictEqual(status, 0, stderr);
    assert.deepStrictEqual(statuses(report), { "hello-greeting": "built", "hello-bundle": "built" });
    const greeting = report?.steps.find((s) => s.name === "hello-greeting")?.result;
    assert.ok(greeting);
    assert.ok(
      greeting.location.startsWith(path.join(fs.realpathSync(root), ".store", "artifacts")),
      greeting.location,
    );
    assert.strictEqual(
      fs.readFileSync(greeting.primary, "utf8"),
      "Hello from hello, an image of the antidote lab platform.\n",
    );
    assert.match(stderr, /hello-bundle\s+built in/);
    const outputs = report?.outputs as { images: { hello: Record<string, { key: string }> } };
    assert.strictEqual(outputs.images.hello["hello-greeting"].key, greeting.key);
  });

  it("does no work on a second run: every step cached, well under a second of step time", () => {
    const { status, stderr, report } = cli(root, "up", "--json");
    assert.strictEqual(status, 0, stderr);
    assert.deepStrictEqual(statuses(report), { "hello-greeting": "cached", "hello-bundle": "cached" });
    const stepMs = (report?.steps ?? []).reduce((sum, s) => sum + (s.result?.elapsedMs ?? 0), 0);
    assert.ok(stepMs < 1000, `step time ${stepMs} ms`);
  });

  it("plan names the edited file and the steps that will rebuild, and builds nothing", () => {
    fs.appendFileSync(path.join(root, "images", "hello", "greeting.txt"), "A second line.\n");
    const { status, stderr, report } = cli(root, "plan", "--json");
    assert.strictEqual(status, 0, stderr);
    assert.deepStrictEqual(statuses(report), {
      "hello-greeting": "would-build",
      "hello-bundle": "would-build",
    });
    const [greeting, bundle] = ["hello-greeting", "hello-bundle"].map((n) =>
      report?.steps.find((s) => s.name === n),
    );
    assert.deepStrictEqual(
      greeting?.changes?.map((c) => `${c.what}:${c.name}`),
      ["file:template"],
    );
    assert.deepStrictEqual(
      bundle?.changes?.map((c) => `${c.what}:${c.name}`),
      ["parent:greeting"],
    );
    assert.match(stderr, /hello-greeting\s+would build: file template changed/);
    const diff = spawnSync(process.execPath, [path.join(root, "bin", "antidote-images.js"), "diff"], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, ANTIDOTE_STORE: "" },
    });
    assert.strictEqual(diff.status, 0, diff.stderr);
    assert.match(diff.stdout, /=== hello: hello-greeting \(template\) would rebuild: file template changed/);
    assert.match(
      diff.stdout,
      /\+\+\+ images\/hello\/greeting.txt \(now\)\n@@ -1 \+1,2 @@\n Hello from \{\{image\}\}.*\n\+A second line\./,
    );
    assert.match(diff.stdout, /input step 'greeting': [0-9a-f]{12} → [0-9a-f]{12}/);
    const again = cli(root, "plan", "--json");
    assert.deepStrictEqual(statuses(again.report), statuses(report), "plan built nothing");
  });

  it("fails a broken step naming its cause and its log once, skips what depends on it, and exits 1", () => {
    fs.appendFileSync(path.join(root, "images", "hello", "greeting.txt"), "{{undefined_placeholder}}\n");
    const { status, stderr, report } = cli(root, "up", "--json");
    assert.strictEqual(status, 1);
    assert.deepStrictEqual(statuses(report), { "hello-greeting": "failed", "hello-bundle": "skipped" });
    const cause = "greeting.txt uses placeholders with no value: undefined_placeholder";
    assert.match(stderr, new RegExp(`✗ +[\\d.]+s hello +hello-greeting +failed: ${cause}\n`));
    assert.match(
      stderr,
      new RegExp(`\n✗ hello: hello-greeting failed: ${cause}\n  log: .*\\.store/logs/[0-9a-f]{64}\\.log\n`),
    );
    assert.match(stderr, /hello-bundle\s+skipped: its input 'greeting' did not build/);
    assert.deepStrictEqual(repeatedLines(stderr), []);
  });

  it("gc removes the artifacts the current steps no longer need, and keeps theirs", () => {
    const greeting = path.join(root, "images", "hello", "greeting.txt");
    fs.copyFileSync(path.join(PROJECT_ROOT, "images", "hello", "greeting.txt"), greeting);
    fs.appendFileSync(greeting, "Rebuilt.\n");
    assert.strictEqual(cli(root, "up").status, 0);
    const artifacts = path.join(root, ".store", "artifacts");
    assert.strictEqual(fs.readdirSync(artifacts).length, 4, "two builds of two steps");
    const dry = cli(root, "gc", "--dry-run");
    assert.strictEqual(dry.status, 0, dry.stderr);
    assert.match(dry.stderr, /kept 2, would remove 2/);
    assert.strictEqual(fs.readdirSync(artifacts).length, 4, "a dry run removes nothing");
    assert.match(cli(root, "gc").stderr, /kept 2, removed 2/);
    assert.deepStrictEqual(statuses(cli(root, "plan", "--json").report), {
      "hello-greeting": "cached",
      "hello-bundle": "cached",
    });
  });

  it("names an unknown image or stack in one line, without a stack trace", () => {
    const image = cli(root, "up", "nosuchimage");
    assert.strictEqual(image.status, 1);
    assert.match(image.stderr, /no image named 'nosuchimage' in .*images; images: hello/);
    assert.doesNotMatch(image.stderr, /\n\s+at /);
    const stack = cli(root, "plan", "--stack", "prod");
    assert.strictEqual(stack.status, 1);
    assert.match(stack.stderr, /no stack 'prod' \(no stacks\/Pulumi.prod.yaml\); stacks: local/);
  });
});

describe("a misspelled package under up (real apt, on debian-base's root filesystem in the shared test store)", () => {
  let root: string;
  before(async () => {
    await debianBase();
    root = scratchProject();
    fs.mkdirSync(path.join(root, "images", "web"));
    fs.writeFileSync(
      path.join(root, "images", "web", "image.ts"),
      [
        'import { Rootfs } from "../../lib";',
        "// debian-base's root filesystem as the integration tests build it, and a web server with a typo.",
        'const base = new Rootfs("debian-base", {});',
        'export const rootfs = new Rootfs("web-rootfs", { image: "web", base, packages: ["ngnix"] });',
        "",
      ].join("\n"),
    );
    fs.writeFileSync(
      path.join(root, "stacks", "Pulumi.local.yaml"),
      `config:\n  antidote-images:store: ${sharedTestStore().location}\n`,
    );
  });

  it("prints one headline naming the package, then apt's few lines once, then the log's path", () => {
    const { status, stderr, report } = cli(root, "up", "web", "--json");
    assert.strictEqual(status, 1, stderr);
    assert.deepStrictEqual(statuses(report), { "debian-base": "cached", "web-rootfs": "failed" });
    assert.match(stderr, /✗ +[\d.]+s web +web-rootfs +failed: apt could not find package ngnix\n/);
    const summary = stderr.slice(
      stderr.indexOf("\n✗ web: web-rootfs failed: apt could not find package ngnix\n"),
    );
    assert.match(
      summary,
      /^\n✗ web: web-rootfs failed: apt could not find package ngnix\n(( {4}.*\n){1,8}) {2}log: \/.*\/logs\/[0-9a-f]{64}\.log\n/,
    );
    assert.strictEqual(stderr.match(/E: Unable to locate package ngnix/g)?.length, 1, stderr);
    assert.doesNotMatch(stderr, /\$ unshare|--no-install-recommends/);
    assert.deepStrictEqual(repeatedLines(stderr), []);
    const failed = report?.steps.find((s) => s.name === "web-rootfs");
    assert.match(failed?.error ?? "", /^apt could not find package ngnix\n/);
  });
});
