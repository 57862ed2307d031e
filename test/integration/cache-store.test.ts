import * as assert from "assert";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { stringify } from "yaml";
import { RunReport } from "../../lib/runner/local-runner";
import { GcsStandIn } from "../gcs-stand-in";
import { helloProject, runCliAsync, tempDir } from "../helpers";

const BUCKET = "antidote-cache-store-test";
const CACHE = `gs://${BUCKET}/nightly`;

/** The hello image with five steps: four templates and their archive, so steps run side by side. */
const PROGRAM = `import * as path from "path";
import { Archive, Template } from "../../lib";

const template = path.join(__dirname, "greeting.txt");
export const greetings = Object.fromEntries(
  ["a", "b", "c", "d"].map((n) => [
    n,
    new Template(\`hello-greeting-\${n}\`, { template, vars: { image: \`cache-\${n}\`, platform: "antidote" }, image: "hello" }),
  ]),
);
export const bundle = new Archive("hello-bundle", { members: greetings, image: "hello" });
`;

/** Step name → status and result, from a `--json` report. */
function steps(
  report: RunReport | undefined,
): Record<string, { status: string; key: string; sha256?: string }> {
  return Object.fromEntries(
    (report?.steps ?? []).map((s) => [s.name, { status: s.status, key: s.key, sha256: s.result?.sha256 }]),
  );
}

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe("cacheStore: the nightly's shared store read as a cache by a local up", function () {
  this.timeout(600_000);
  const standIn = new GcsStandIn();
  let root: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let nightly: ReturnType<typeof steps>;

  const writeStack = (stack: string, config: Record<string, string>) =>
    fs.writeFileSync(path.join(root, "stacks", `Pulumi.${stack}.yaml`), stringify({ config }));

  before(async () => {
    const endpoint = await standIn.start();
    root = helloProject("cache-store-project", PROGRAM);
    dir = tempDir("cache-store-stores");
    // The nightly's build hosts publish every artifact into the shared store: here one host, building locally.
    writeStack("nightly", {
      "antidote-images:store": path.join(dir, "nightly"),
      "antidote-images:sharedStore": CACHE,
    });
    env = { ...process.env, STORAGE_EMULATOR_HOST: endpoint };
    // Unset, not deleted: runCliAsync adds env to its own environment.
    for (const name of ["ANTIDOTE_STORE", "ANTIDOTE_SHARED_STORE", "ANTIDOTE_CACHE_STORE"])
      env[name] = undefined;
  });

  after(() => standIn.stop());

  it("a nightly build publishes its artifacts into the shared store", async () => {
    const { status, stderr, report } = await runCliAsync(root, ["up", "--stack", "nightly", "--json"], {
      env,
    });
    assert.strictEqual(status, 0, stderr);
    nightly = steps(report);
    assert.strictEqual(Object.keys(nightly).length, 5, JSON.stringify(nightly));
    for (const step of Object.values(nightly))
      assert.ok(standIn.names(BUCKET).includes(`nightly/artifacts/${step.key}.json`), step.key);
  });

  it("a fresh store's up builds nothing the cache has, and writes nothing to it", async () => {
    const store = path.join(dir, "author");
    writeStack("local", { "antidote-images:store": store, "antidote-images:cacheStore": CACHE });
    const objects = standIn.names(BUCKET);
    standIn.requests.length = 0;
    const { status, stderr, report } = await runCliAsync(root, ["up", "--stack", "local", "--json"], { env });
    assert.strictEqual(status, 0, stderr);
    const local = steps(report);
    assert.deepStrictEqual(Object.keys(local).sort(), Object.keys(nightly).sort());
    for (const [name, step] of Object.entries(local)) {
      assert.strictEqual(step.status, "cached", `${name}: ${stderr}`);
      assert.deepStrictEqual([step.key, step.sha256], [nightly[name].key, nightly[name].sha256], name);
      assert.ok(fs.existsSync(path.join(store, "artifacts", step.key, "meta.json")), `${name} copied in`);
    }
    assert.doesNotMatch(stderr, /warning: cache/);
    assert.deepStrictEqual(
      standIn.requests.filter((r) => !r.startsWith("GET")),
      [],
      "the cache is only read",
    );
    assert.deepStrictEqual(standIn.names(BUCKET), objects);
  });

  it("with the cache unreachable (a closed port), a fresh store builds every step after exactly one warning", async () => {
    const closed = `http://127.0.0.1:${await closedPort()}`;
    writeStack("offline", {
      "antidote-images:store": path.join(dir, "offline"),
      "antidote-images:cacheStore": CACHE,
    });
    const { status, stderr, report, ms } = await runCliAsync(root, ["up", "--stack", "offline", "--json"], {
      env: { ...env, STORAGE_EMULATOR_HOST: closed },
    });
    assert.strictEqual(status, 0, stderr);
    const offline = steps(report);
    for (const [name, step] of Object.entries(offline)) {
      assert.strictEqual(step.status, "built", name);
      assert.strictEqual(step.sha256, nightly[name].sha256, `${name}: the same artifact, built here`);
    }
    const warnings = stderr.split("\n").filter((l) => /warning: cache/.test(l));
    assert.strictEqual(warnings.length, 1, stderr);
    assert.match(warnings[0], new RegExp(`cache ${CACHE}/ is not usable \\(.*ECONNREFUSED.*\\)`));
    // A figure for the report, not a pass/fail condition (docs/scale-out.md quotes it).
    console.log(`      offline up of ${Object.keys(offline).length} steps: ${ms} ms`);
  });
});
