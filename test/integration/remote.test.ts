import * as assert from "assert";
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { stringify } from "yaml";
import { RunReport } from "../../lib/runner/local-runner";
import { GcsStandIn } from "../gcs-stand-in";
import { helloProject, runCliAsync, tempDir } from "../helpers";

const BUCKET = "antidote-remote-test";

/** The hello image with more steps (six templates and an archive of them), so the keys spread over both hosts. */
const PROGRAM = `import * as path from "path";
import { Archive, Template } from "../../lib";

const template = path.join(__dirname, "greeting.txt");
export const greetings = Object.fromEntries(
  ["a", "b", "c", "d", "e", "f"].map((n) => [
    n,
    new Template(\`hello-greeting-\${n}\`, { template, vars: { image: \`hello-\${n}\`, platform: "antidote" }, image: "hello" }),
  ]),
);
export const bundle = new Archive("hello-bundle", { members: greetings, image: "hello" });
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function keygen(file: string): string {
  const run = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file], {
    encoding: "utf8",
  });
  assert.strictEqual(run.status, 0, run.stderr);
  return fs.readFileSync(`${file}.pub`, "utf8").trim();
}

interface TestHost {
  name: string;
  port: number;
  hostKey: string;
  store: string;
  sshd?: ChildProcess;
}

/** An sshd on a loopback port with its own host key, accepting only the test's client key. */
async function startSshd(
  dir: string,
  name: string,
  clientPub: string,
  env: Record<string, string>,
): Promise<TestHost> {
  const home = path.join(dir, name);
  fs.mkdirSync(home);
  const hostKey = keygen(path.join(home, "ssh_host_ed25519_key"));
  fs.writeFileSync(path.join(home, "authorized_keys"), `${clientPub}\n`);
  const port = await freePort();
  fs.writeFileSync(
    path.join(home, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${path.join(home, "ssh_host_ed25519_key")}`,
      `PidFile ${path.join(home, "sshd.pid")}`,
      `AuthorizedKeysFile ${path.join(home, "authorized_keys")}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "StrictModes no",
      `SetEnv ${Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
      "",
    ].join("\n"),
  );
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", path.join(home, "sshd_config")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  sshd.stderr?.on("data", (c: Buffer) => (log += c.toString()));
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (sshd.exitCode !== null || Date.now() > deadline)
      throw new Error(`sshd ${name} did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    port,
    hostKey: hostKey.split(" ").slice(0, 2).join(" "),
    store: path.join(dir, `store-${name}`),
    sshd,
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

function byName(
  report: RunReport | undefined,
): Record<string, { status: string; key: string; sha256?: string; location?: string; error?: string }> {
  return Object.fromEntries(
    (report?.steps ?? []).map((s) => [
      s.name,
      {
        status: s.status,
        key: s.key,
        sha256: s.result?.sha256,
        location: s.result?.location,
        error: s.error,
      },
    ]),
  );
}

describe("remote build hosts: two sshd on loopback sharing a stand-in bucket", function () {
  this.timeout(300_000);
  const standIn = new GcsStandIn();
  let root: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const hosts: TestHost[] = [];

  const writeStack = (stack: string, list: TestHost[]) => {
    const config = {
      "antidote-images:buildHosts": list.map((h) => ({
        name: h.name,
        host: "127.0.0.1",
        port: h.port,
        user: "root",
        hostKey: h.hostKey,
        capacity: 2,
        dir: root,
        store: h.store,
        dialTimeout: 5,
      })),
      "antidote-images:sharedStore": `gs://${BUCKET}/ci`,
    };
    fs.writeFileSync(path.join(root, "stacks", `Pulumi.${stack}.yaml`), stringify({ config }));
  };

  before(async function () {
    if (!fs.existsSync("/usr/sbin/sshd")) this.skip();
    const endpoint = await standIn.start();
    root = helloProject("remote-project", PROGRAM);
    dir = tempDir("remote-hosts");
    const clientPub = keygen(path.join(dir, "client"));
    const hostEnv = { STORAGE_EMULATOR_HOST: endpoint };
    for (const name of ["alpha", "beta"]) hosts.push(await startSshd(dir, name, clientPub, hostEnv));
    writeStack("remote", hosts);
    fs.writeFileSync(
      path.join(root, "stacks", "Pulumi.local.yaml"),
      stringify({ config: { "antidote-images:store": path.join(dir, "store-local") } }),
    );
    env = { ...process.env, ANTIDOTE_BUILD_HOST_KEY: fs.readFileSync(path.join(dir, "client"), "utf8") };
    // Unset, not deleted: runCliAsync adds env to its own environment.
    for (const name of ["ANTIDOTE_STORE", "ANTIDOTE_SHARED_STORE", "STORAGE_EMULATOR_HOST"])
      env[name] = undefined;
  });

  after(async () => {
    for (const host of hosts) host.sshd?.kill("SIGTERM");
    await standIn.stop();
  });

  let remote: ReturnType<typeof byName>;

  it("up spreads the steps over both hosts, each building into its own store, parents fetched through the bucket", async () => {
    const { status, stderr, report } = await runCliAsync(root, ["up", "--stack", "remote", "--json"], {
      env,
    });
    assert.strictEqual(status, 0, stderr);
    remote = byName(report);
    assert.strictEqual(Object.keys(remote).length, 7);
    for (const [name, step] of Object.entries(remote))
      assert.strictEqual(step.status, "built", `${name}: ${step.error}`);
    const hostOf = (location = "") => hosts.find((h) => location.startsWith(h.store))?.name;
    const used = new Set(Object.values(remote).map((s) => hostOf(s.location)));
    assert.deepStrictEqual([...used].sort(), ["alpha", "beta"], JSON.stringify(remote, null, 2));
    const bundleHost = hostOf(remote["hello-bundle"].location);
    const elsewhere = Object.entries(remote).filter(
      ([n, s]) => n !== "hello-bundle" && hostOf(s.location) !== bundleHost,
    );
    assert.ok(elsewhere.length > 0, "the bundle reads greetings built on the other host");
    const names = standIn.names(BUCKET);
    for (const step of Object.values(remote))
      assert.ok(names.includes(`ci/artifacts/${step.key}.json`), step.key);
  });

  it("gives the same keys and sha256s as a local build", async () => {
    const { status, stderr, report } = await runCliAsync(root, ["up", "--stack", "local", "--json"], { env });
    assert.strictEqual(status, 0, stderr);
    const local = byName(report);
    const strip = (steps: typeof remote) =>
      Object.fromEntries(Object.entries(steps).map(([n, s]) => [n, { key: s.key, sha256: s.sha256 }]));
    assert.deepStrictEqual(strip(local), strip(remote));
    assert.ok(
      Object.values(local).every((s) => s.status === "built"),
      "the local store started empty",
    );
  });

  it("does no work on either host the second time", async () => {
    const { status, stderr, report } = await runCliAsync(root, ["up", "--stack", "remote", "--json"], {
      env,
    });
    assert.strictEqual(status, 0, stderr);
    const again = byName(report);
    for (const [name, step] of Object.entries(again)) {
      assert.strictEqual(step.status, "cached", name);
      assert.strictEqual(step.location, remote[name].location, `${name} ran on the same host as before`);
    }
  });

  it("fails the steps of an unreachable host within its dial timeout, naming it, while the other host's work goes on", async () => {
    const closed = { ...hosts[1], port: await freePort() };
    writeStack("broken", [hosts[0], closed]);
    const { status, report, ms } = await runCliAsync(root, ["up", "--stack", "broken", "--json"], { env });
    assert.strictEqual(status, 1);
    const steps = byName(report);
    const failed = Object.values(steps).filter((s) => s.status === "failed");
    assert.ok(failed.length > 0, JSON.stringify(steps, null, 2));
    for (const step of failed) {
      assert.match(
        step.error ?? "",
        new RegExp(`build host beta \\(root@127\\.0\\.0\\.1:${closed.port}\\) is unreachable`),
      );
      assert.match(step.error ?? "", /Connection refused/);
    }
    const onAlpha = Object.values(steps).filter((s) => s.status === "cached");
    assert.ok(onAlpha.length > 0, "alpha's steps ran");
    assert.ok(ms < 60_000, `took ${ms} ms`);
  });
});
