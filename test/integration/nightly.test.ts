import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { RunReport, StepRecord } from "../../lib/runner/local-runner";
import { GcsStandIn } from "../gcs-stand-in";
import { PROJECT_ROOT, runCliAsync, sharedTestStore, tempDir } from "../helpers";
import { LOGIN_REGISTRY, LOGIN_USER, loginRegistryDigest, startLoginRegistry } from "../login-registry";

/** The nightly stack's bucket (stacks/Pulumi.nightly.yaml), served by the stand-in. */
const BUCKET = "antidote-images-artifacts";
const NAMESPACE = "antidotelabs";

function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/**
 * A project with the nightly stack file as shipped and two lab images: `lab-ok`, a disk of debian-base's root
 * filesystem and the kernel as the other integration tests build them (the shared store has both, so only the disk,
 * its boot test and the container build), and `lab-broken`, a blank vendor disk whose boot test cannot pass.
 * `lab-ok`'s description is new at every run: its container key, hence its tags, are new, so its pushes upload.
 */
function nightlyProject(): string {
  const root = tempDir("publish-nightly");
  for (const link of ["lib", "bin", "node_modules", "kernel"])
    fs.symlinkSync(path.join(PROJECT_ROOT, link), path.join(root, link));
  for (const file of ["Pulumi.yaml", "package.json", "index.ts", "tsconfig.json"])
    fs.copyFileSync(path.join(PROJECT_ROOT, file), path.join(root, file));
  fs.mkdirSync(path.join(root, "stacks"));
  fs.copyFileSync(
    path.join(PROJECT_ROOT, "stacks", "Pulumi.nightly.yaml"),
    path.join(root, "stacks", "Pulumi.nightly.yaml"),
  );
  const image = (name: string, description: string, lines: string[]) => {
    const dir = path.join(root, "images", name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, "metadata.yaml"),
      `name: ${name}\ndescription: ${JSON.stringify(description)}\n`,
    );
    fs.writeFileSync(path.join(dir, "image.ts"), [...lines, ""].join("\n"));
    return dir;
  };
  image("lab-ok", `debian-base's disk, published by the nightly test (run ${Date.now()}).`, [
    'import { BootTest, ContainerImage, Kernel, Qcow2Disk, Rootfs } from "../../lib";',
    "// As the integration tests build them (test/fixtures): the shared test store has both.",
    'const rootfs = new Rootfs("debian-base", {});',
    'const kernel = new Kernel("kernel");',
    'const disk = new Qcow2Disk("lab-ok-disk", { rootfs, kernel, image: "lab-ok" });',
    'const bootTest = new BootTest("lab-ok-boot-test", { disk, image: "lab-ok" });',
    "export const container = new ContainerImage(",
    '  "lab-ok-container",',
    '  { image: "lab-ok", disk, bootTest, kernel, metadata: __dirname },',
    ");",
  ]);
  const broken = image("lab-broken", "A blank disk: nothing boots.", []);
  sh("qemu-img", ["create", "-q", "-f", "qcow2", path.join(broken, "blank.qcow2"), "1M"]);
  const sha256 = sh("sha256sum", [path.join(broken, "blank.qcow2")]).split(" ")[0];
  fs.writeFileSync(
    path.join(broken, "image.ts"),
    [
      'import * as path from "path";',
      'import { BootTest, ContainerImage, Qcow2Disk } from "../../lib";',
      'const disk = Qcow2Disk.import("lab-broken-disk", {',
      `  source: path.join(__dirname, "blank.qcow2"), sha256: "${sha256}", format: "qcow2", image: "lab-broken",`,
      "});",
      "const bootTest = new BootTest(",
      '  "lab-broken-boot-test",',
      '  { disk, image: "lab-broken", sshTimeoutSeconds: 15, user: "antidote", hostname: "lab-broken" },',
      ");",
      "export const container = new ContainerImage(",
      '  "lab-broken-container",',
      '  { image: "lab-broken", disk, bootTest, metadata: __dirname },',
      ");",
      "",
    ].join("\n"),
  );
  return root;
}

function statuses(report: RunReport): Record<string, string> {
  return Object.fromEntries(report.steps.map((s) => [s.name, s.status]));
}

/** Every file under `dir` modified since `since` (ms), for grepping what a run wrote. */
function writtenSince(dir: string, since: number): string[] {
  const files: string[] = [];
  const walk = (at: string) => {
    for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && fs.statSync(full).mtimeMs >= since) files.push(full);
    }
  };
  walk(dir);
  return files;
}

describe("up --stack nightly on loopback stand-ins (registry with a login, the GCS stand-in)", function () {
  const standIn = new GcsStandIn();
  const store = sharedTestStore();
  const publications = ["tag-key", "push-key", "tag-moving", "push-moving"].map(
    (p) => `lab-ok-container-${p}`,
  );
  const uploads = ["lab-ok-container-disk-upload", "lab-ok-container-kernel-upload"];
  let root: string;
  let password: string;
  let endpoint: string;
  let started: number;
  const outputs: string[] = [];
  const dockerRefs: string[] = [];

  /** `antidote-images up --stack nightly`, pointed at the stand-ins by --config and the environment (docs). */
  const up = async (): Promise<{ status: number | null; report: RunReport; stderr: string }> => {
    const run = await runCliAsync(
      root,
      [
        "up",
        "--stack",
        "nightly",
        "--json",
        "--config",
        `antidote-images:store=${store.location}`,
        "--config",
        `antidote-images:registry=${LOGIN_REGISTRY}/${NAMESPACE}`,
        "--config",
        `antidote-images:registryUsername=${LOGIN_USER}`,
      ],
      {
        timeoutMs: 3_000_000,
        env: { ANTIDOTE_REGISTRY_PASSWORD: password, STORAGE_EMULATOR_HOST: endpoint },
      },
    );
    outputs.push(run.stdout, run.stderr);
    assert.ok(run.stdout.trim().startsWith("{"), `no JSON report; stderr:\n${run.stderr}`);
    return { status: run.status, report: JSON.parse(run.stdout) as RunReport, stderr: run.stderr };
  };

  before(async function () {
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-dockerd.sh")], { stdio: "inherit" });
    password = startLoginRegistry();
    endpoint = await standIn.start();
    root = nightlyProject();
    started = Date.now() - 1000;
  });
  after(async function () {
    await standIn.stop();
    for (const ref of dockerRefs) spawnSync("docker", ["image", "rm", "--force", ref], { stdio: "ignore" });
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  let first: { status: number | null; report: RunReport; stderr: string };

  it("publishes the image whose boot test passed, logged in, under its key and moving tags, and nothing of the other", async function () {
    first = await up();
    const { report, stderr } = first;
    const status = statuses(report);
    assert.strictEqual(first.status, 1, "a failed boot test fails the run");
    assert.strictEqual(status["lab-broken-boot-test"], "failed", stderr);
    for (const name of [...publications, ...uploads])
      assert.strictEqual(status[name], "built", `${name}: ${JSON.stringify(status)}`);
    const brokenOnes = report.steps.filter((s) => s.name.startsWith("lab-broken-container"));
    assert.ok(brokenOnes.length > 0);
    for (const step of brokenOnes) assert.strictEqual(step.status, "skipped", `${step.name}: ${step.error}`);

    // The registry refuses anonymous reads: what is there came with the login.
    const anonymous = sh("curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://${LOGIN_REGISTRY}/v2/`,
    ]);
    assert.strictEqual(anonymous, "401");
    const container = report.steps.find((s) => s.name === "lab-ok-container") as StepRecord;
    const repository = `${NAMESPACE}/lab-ok`;
    const digest = loginRegistryDigest(password, repository, container.key);
    assert.ok(digest, "the key tag is in the registry");
    assert.strictEqual(
      loginRegistryDigest(password, repository, "latest"),
      digest,
      "the moving tag follows it",
    );
    const images = (report.outputs as { images: Record<string, Record<string, { reference?: string }>> })
      .images;
    assert.strictEqual(
      images["lab-ok"]["lab-ok-container"].reference,
      `${LOGIN_REGISTRY}/${repository}@${digest}`,
    );
    assert.strictEqual(loginRegistryDigest(password, `${NAMESPACE}/lab-broken`, "latest"), undefined);
    dockerRefs.push(
      `${LOGIN_REGISTRY}/${repository}:${container.key}`,
      `${LOGIN_REGISTRY}/${repository}:latest`,
      // The container step's own tag, new at every run of this test.
      `antidote-images/lab-ok:${container.key}`,
    );

    // The disk and the kernel package, once each, under their content-addressed names, with the disk's sha256.
    const disk = report.steps.find((s) => s.name === "lab-ok-disk")!.result!;
    const kernel = report.steps.find((s) => s.name === "kernel")!;
    const diskObject = `disks/lab-ok/${disk.key}.qcow2`;
    const kernelObject = `kernels/${kernel.key}.deb`;
    assert.deepStrictEqual(standIn.names(BUCKET), [diskObject, kernelObject].sort());
    const stored = standIn.buckets.get(BUCKET)!.get(diskObject)!;
    assert.strictEqual(createHash("sha256").update(stored.content).digest("hex"), disk.sha256);
    assert.strictEqual(stored.metadata?.sha256, disk.sha256);
    // One upload started per object (a resumable one's chunks are PUTs to its session).
    const started = standIn.requests.filter((r) => r.startsWith("POST /upload/"));
    assert.strictEqual(started.length, 2, started.join("\n"));

    // Each publication only after the boot test passed: the first line naming one follows the test's result.
    const lines = stderr.split("\n");
    const tested = lines.findIndex((l) => /\blab-ok-boot-test\s+(built|cached)\b/.test(l));
    const published = lines.findIndex((l) =>
      /\blab-ok-container-(tag|push|disk-upload|kernel-upload)/.test(l),
    );
    assert.ok(
      tested >= 0 && published > tested,
      `boot test at line ${tested}, first publication at ${published}`,
    );
  });

  it("a second run builds, pushes and uploads nothing", async function () {
    assert.ok(first, "the first run ran");
    const requestsBefore = standIn.requests.filter((r) => !r.startsWith("GET ")).length;
    const { report } = await up();
    const status = statuses(report);
    const changed = report.steps.filter((s) => s.status === "built" || s.status === "building");
    assert.deepStrictEqual(
      changed.map((s) => s.name),
      [],
    );
    for (const name of [...publications, ...uploads]) assert.strictEqual(status[name], "cached", name);
    assert.strictEqual(status["lab-broken-boot-test"], "failed");
    assert.strictEqual(
      standIn.requests.filter((r) => !r.startsWith("GET ")).length,
      requestsBefore,
      "nothing was written to the bucket",
    );
  });

  it("leaves the password nowhere: not in the reports, the logs, the store, the bucket or the images", function () {
    assert.ok(first, "the first run ran");
    // docker keeps a login base64-encoded in its config: that form is looked for too.
    const forms = [password, Buffer.from(`${LOGIN_USER}:${password}`).toString("base64")];
    const holds = (text: string | Buffer) => forms.some((f) => text.includes(f));
    outputs.forEach((text, i) =>
      assert.ok(!holds(text), `the ${i % 2 ? "stderr" : "JSON report"} of run ${i >> 1}`),
    );
    const written = [...writtenSince(store.location, started), ...writtenSince(root, started)];
    assert.ok(written.length > 0, "the runs wrote into the store");
    const found = written.filter((file) => holds(fs.readFileSync(file)));
    assert.deepStrictEqual(found, [], "files written by the runs that hold the password");
    for (const [name, object] of standIn.buckets.get(BUCKET) ?? new Map())
      assert.ok(!holds(object.content) && !holds(JSON.stringify(object.metadata ?? {})), name);
    for (const ref of dockerRefs) {
      const inspected = sh("docker", ["image", "inspect", ref]);
      const history = sh("docker", ["history", "--no-trunc", ref]);
      assert.ok(!holds(inspected) && !holds(history), ref);
    }
  });
});
