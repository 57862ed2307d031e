import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { lessonCheckArgs } from "../../lib/lesson/check";
import { shellQuote } from "../../lib/steps/rootfs/tree";
import { chooseAccelerator } from "../../lib/vm/accel";
import { freePort, RunningVm, startVm } from "../../lib/vm/qemu";
import { sshRun, SshTarget } from "../../lib/vm/ssh";
import { labContainer, labDisk, labMetadata } from "../fixtures/lab-images";
import { PROJECT_ROOT, sharedTestStore, tempDir } from "../helpers";
import {
  FileVerdict,
  LESSON_FIXTURES as FIXTURES,
  docExamples,
  lessonValidateJson,
} from "../lesson-fixtures";

const FRR = labMetadata("frr");
/** What `lesson validate --image frr` checks against; the VM has these NICs. */
const FRR_INTERFACES = FRR.interfaces.map((i) => i.name);

/** The two-router lesson of docs/lessons.md; this VM is r1. */
const LESSON = {
  version: 1,
  services: [{ name: "frr", watch: ["/etc/frr/frr.conf"] }],
  // Needs frr running: at boot it runs after frr has started (antidote-configure-commands.service).
  commands: [{ run: "vtysh -c 'show version' >/run/lesson-frr-version" }],
  hosts: {
    r1: {
      hostname: "r1",
      interfaces: {
        eth1: { addresses: ["10.0.12.1/24", "2001:db8:12::1/64"] },
        eth2: { addresses: ["10.0.13.1/24"], mtu: 1400 },
      },
      files: [
        { source: "r1/frr.conf", path: "/etc/frr/frr.conf", mode: "0640", owner: "frr", group: "frrvty" },
      ],
    },
    r2: {
      hostname: "r2",
      interfaces: { eth1: { addresses: ["10.0.12.2/24", "2001:db8:12::2/64"] } },
      files: [
        { source: "r2/frr.conf", path: "/etc/frr/frr.conf", mode: "0640", owner: "frr", group: "frrvty" },
      ],
    },
  },
};

/** Configurations that must fail before changing anything: each also asks for changes that are fine on their own. */
const BAD: Record<string, { doc: object; entries: string[] }> = {
  "unknown-interface.json": {
    doc: {
      hostname: "changed",
      interfaces: { eth1: { addresses: ["10.0.99.1/24"] }, eth9: { addresses: ["10.9.0.1/24"] } },
    },
    entries: ["interfaces.eth9"],
  },
  "missing-source.json": {
    doc: {
      hostname: "changed",
      files: [
        { source: "r2/frr.conf", path: "/etc/frr/frr.conf" },
        { source: "r3/frr.conf", path: "/etc/frr/daemons" },
      ],
    },
    entries: ["files[1].source"],
  },
  "bad-address.json": {
    doc: { hostname: "changed", interfaces: { eth1: { addresses: ["10.0.99.1/24", "10.0.12.300/24"] } } },
    entries: ["interfaces.eth1.addresses[1]"],
  },
};

/** A lesson directory with the two-router lesson, readable by the container's unprivileged QEMU. */
function lessonDir(extra: Record<string, object> = {}): string {
  const dir = tempDir("lesson");
  fs.chmodSync(dir, 0o755);
  for (const r of ["r1", "r2"]) fs.cpSync(path.join(FIXTURES, r), path.join(dir, r), { recursive: true });
  fs.writeFileSync(path.join(dir, "lesson.json"), JSON.stringify(LESSON, null, 2));
  for (const [name, doc] of Object.entries(extra))
    fs.writeFileSync(path.join(dir, name), JSON.stringify(doc));
  return dir;
}

interface Report {
  result: string;
  exitCode: number;
  errors: { entry: string; message: string }[];
  changes: { entry: string; change: string }[];
  actions: { entry: string; change: string }[];
}

/**
 * Copies every lesson fixture and the examples of docs/lessons.md to `fixtures/` in the lesson directory; returns their
 * names relative to it ("fixtures/bad-keys.json"), the same on the host and under /antidote in the VM.
 */
function copyFixtures(lesson: string): string[] {
  const dir = path.join(lesson, "fixtures");
  fs.cpSync(FIXTURES, dir, { recursive: true });
  docExamples().forEach((example, i) =>
    fs.writeFileSync(path.join(dir, `docs-example-${i + 1}.json`), example),
  );
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => `fixtures/${f}`);
}

describe("lesson configuration in a booted frr VM (antidote-configure at boot, TCG unless KVM works)", function () {
  const store = sharedTestStore();
  const lesson = lessonDir(Object.fromEntries(Object.entries(BAD).map(([name, { doc }]) => [name, doc])));
  const fixtures = copyFixtures(lesson);
  // `lesson validate` on the host, in the lesson directory, of every file the VM checks: the verdicts to compare.
  let onHost: Promise<{ status: number | null; files: FileVerdict[] }>;
  const hostVerdict = async (file: string): Promise<FileVerdict> => {
    const verdict = (await onHost).files.find((f) => f.file === file);
    assert.ok(verdict, `lesson validate reported nothing for ${file}`);
    return verdict;
  };
  const work = tempDir("lesson-vm");
  const consoleLog = path.join(work, "console.log");
  let vm: RunningVm | undefined;
  let target: SshTarget;

  const ssh = async (command: string) => {
    const r = await sshRun(target, command, { timeoutMs: 120_000 });
    assert.notStrictEqual(r.status, null, `ssh '${command}' timed out`);
    return r;
  };
  const state = async () =>
    (
      await ssh(
        "hostname; ip -o addr show dev eth1; ip -o addr show dev eth2; cat /sys/class/net/eth2/mtu; " +
          "sudo -n sha256sum /etc/frr/frr.conf; sudo -n stat -c '%a %U %G' /etc/frr/frr.conf /etc/frr/daemons",
      )
    ).stdout.replace(/valid_lft.*$/gm, "");

  before(async function () {
    onHost = lessonValidateJson(
      [...Object.keys(BAD), ...fixtures, "--interfaces", FRR_INTERFACES.join(",")],
      lesson,
    );
    onHost.catch(() => {}); // awaited by the tests that compare
    const disk = await labDisk(store, "frr");
    const overlay = path.join(work, "overlay.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", disk.primary, "-F", "qcow2", overlay]);
    const accel = await chooseAccelerator("auto", store.cacheDir("kvm-probe"));
    target = { port: await freePort(), user: "antidote", password: "antidotepassword" };
    vm = startVm(
      {
        disk: overlay,
        memoryMiB: 512,
        cpus: 1,
        nics: 3,
        sshPort: target.port,
        console: consoleLog,
        accelerator: accel.accelerator,
        firmware: "bios",
        lessonDir: lesson,
        lessonHost: "r1",
      },
      path.join(work, "qemu.log"),
    );
    // The unit runs before sshd: a login means the configuration was applied (or failed).
    const deadline = Date.now() + 600_000;
    for (;;) {
      if (vm.exitStatus)
        throw new Error(`QEMU exited: ${fs.readFileSync(path.join(work, "qemu.log"), "utf8")}`);
      if ((await sshRun(target, "true", { timeoutMs: 30_000 })).status === 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `no SSH login after 600 s; console:\n${fs.readFileSync(consoleLog, "utf8").slice(-3000)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  });

  after(async () => {
    await vm?.stop();
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(lesson, { recursive: true, force: true });
  });

  it("comes up configured for host r1: status file, unit active, the report on the console", async () => {
    const status = await ssh("cat /run/antidote/configure.status; systemctl is-active antidote-configure");
    assert.match(status.stdout, /^0 applied: \d+ changed, \d+ ok \(host r1\)\nactive\n$/, status.stdout);
    assert.match(fs.readFileSync(consoleLog, "utf8"), /antidote-configure: applied: \d+ changed/);
  });

  it("set the host name, the addresses and the MTU", async () => {
    const r = await ssh(
      "hostname; cat /etc/hostname; grep 127.0.1.1 /etc/hosts; ip -o addr show; cat /sys/class/net/eth2/mtu",
    );
    const [hostname, etcHostname, hosts] = r.stdout.split("\n");
    assert.deepStrictEqual([hostname, etcHostname, hosts], ["r1", "r1", "127.0.1.1\tr1"]);
    assert.match(r.stdout, /eth1\s+inet 10\.0\.12\.1\/24/);
    assert.match(r.stdout, /eth1\s+inet6 2001:db8:12::1\/64/);
    assert.match(r.stdout, /eth2\s+inet 10\.0\.13\.1\/24/);
    assert.match(r.stdout, /\n1400\n$/);
  });

  it("copied frr.conf with its mode and owner, and started frr once, after it, which runs it", async () => {
    const r = await ssh("sudo -n cat /etc/frr/frr.conf; sudo -n stat -c '%a %U %G' /etc/frr/frr.conf");
    assert.strictEqual(
      r.stdout,
      `${fs.readFileSync(path.join(FIXTURES, "r1/frr.conf"), "utf8")}640 frr frrvty\n`,
    );
    const log = await ssh("cat /var/log/antidote-configure.log");
    assert.match(log.stdout, /deferred: services\[0\]: frr\.service starts after the configuration \(boot\)/);
    const starts = await ssh("sudo -n journalctl -b -o cat -u frr.service | grep -c '^Started frr.service'");
    assert.strictEqual(starts.stdout, "1\n", "frr started once");
    // It yields the vCPU to the way to SSH while the VM boots, and only then.
    const weight = await ssh("systemctl show -p StartupCPUWeight -p CPUWeight frr.service");
    assert.strictEqual(weight.stdout, "CPUWeight=[not set]\nStartupCPUWeight=20\n");
    const running = await ssh(
      // ospfd may still be reading its configuration just after the start (slow under a loaded TCG host).
      "for i in $(seq 60); do systemctl is-active -q frr && break; sleep 1; done; systemctl is-active frr && for i in $(seq 30); do vtysh -c 'show running-config' | grep -q '^router ospf' && break; sleep 2; done; vtysh -c 'show running-config'",
    );
    assert.strictEqual(running.status, 0, running.stderr);
    assert.match(running.stdout, /router ospf\n ospf router-id 1\.1\.1\.1/);
  });

  it("ran the lesson's command after frr had started, and before SSH answered", async () => {
    const r = await ssh(
      "cat /run/lesson-frr-version; systemctl is-active antidote-configure-commands; cat /var/log/antidote-configure.log",
    );
    assert.match(r.stdout, /^FRRouting /m, r.stdout);
    assert.match(r.stdout, /^active$/m);
    assert.match(
      r.stdout,
      /changed: commands: handed to antidote-configure-commands\.service, after frr\.service/,
    );
    assert.match(r.stdout, /changed: commands\[0\]: ran: vtysh/);
  });

  it("changes nothing when run again", async () => {
    const before = await state();
    const r = await ssh("sudo -n antidote-configure --json");
    const report = JSON.parse(r.stdout) as Report;
    assert.deepStrictEqual(
      [r.status, report.result, report.changes, report.actions],
      [0, "unchanged", [], []],
    );
    assert.strictEqual(await state(), before);
  });

  for (const [name, { entries }] of Object.entries(BAD)) {
    it(`refuses ${name} with exit 2, naming ${entries.join(", ")} as lesson validate does, and changes nothing`, async () => {
      const before = await state();
      const r = await ssh(`sudo -n antidote-configure --config /antidote/${name} --json`);
      const report = JSON.parse(r.stdout) as Report;
      assert.deepStrictEqual(
        [r.status, report.result, report.errors.map((e) => e.entry)],
        [2, "invalid", entries],
        JSON.stringify(report.errors),
      );
      assert.deepStrictEqual(report.errors, (await hostVerdict(name)).problems);
      assert.deepStrictEqual(report.changes, []);
      assert.strictEqual(await state(), before);
    });
  }

  it("gives every lesson fixture and docs example the verdict and messages lesson validate gives on the host", async () => {
    // The very arguments `lesson validate` passes on the host, from the same directory: /antidote is the lesson dir.
    const checks = fixtures.map(
      (file) =>
        `sudo -n antidote-configure ${lessonCheckArgs(file, { interfaces: FRR_INTERFACES }).map(shellQuote).join(" ")}`,
    );
    const r = await ssh(`cd /antidote && { ${checks.join("; ")}; }`);
    const reports = r.stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Report);
    assert.strictEqual(reports.length, fixtures.length, r.stdout + r.stderr);
    for (const [i, file] of fixtures.entries()) {
      const inVm: FileVerdict = { file, valid: reports[i].result === "valid", problems: reports[i].errors };
      assert.deepStrictEqual(inVm, await hostVerdict(file));
    }
    // Not all one verdict: the comparison covers valid and invalid files.
    const verdicts = new Set(reports.map((report) => report.result));
    assert.deepStrictEqual([...verdicts].sort(), ["invalid", "valid"]);
  });
});

function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

describe("lesson configuration in a running frr container (real dockerd, TCG)", function () {
  const store = sharedTestStore();
  const containers: string[] = [];
  const dirs: string[] = [];
  let ref: string;

  /** Starts the frr lab image as container host `hostname` with `lesson` as its lesson directory. */
  function start(hostname: string, lesson: string): string {
    const name = `antidote-lesson-it-${hostname}-${process.pid}`;
    containers.push(name);
    dirs.push(lesson);
    sh("docker", [
      ...["run", "--detach", "--name", name, "--hostname", hostname, "--cap-add", "NET_ADMIN"],
      ...["--publish", "127.0.0.1::22", "--volume", `${lesson}:/antidote:ro`],
      // No lab links in this test: the VM's data NICs start unplugged at once.
      ...["--env", "ANTIDOTE_ACCEL=tcg", "--env", "ANTIDOTE_INTERFACE_TIMEOUT=0", ref],
    ]);
    return name;
  }

  /**
   * Waits for the health check's verdict: healthy, unhealthy, or a failed lesson configuration (reported at once,
   * while Docker still counts the start period). Returns the status and the last health output.
   */
  async function verdict(name: string): Promise<{ status: string; output: string }> {
    const deadline = Date.now() + 900_000;
    for (;;) {
      const inspect = JSON.parse(sh("docker", ["inspect", "-f", "{{json .State}}", name])) as {
        Status: string;
        Health?: { Status: string; Log: { Output: string }[] };
      };
      if (inspect.Status !== "running") {
        throw new Error(
          `the container is ${inspect.Status}:\n${sh("docker", ["logs", "--tail", "40", name])}`,
        );
      }
      const status = inspect.Health?.Status ?? "";
      const output = inspect.Health?.Log.at(-1)?.Output ?? "";
      if (
        status === "healthy" ||
        status === "unhealthy" ||
        output.startsWith("lesson configuration failed")
      ) {
        return { status, output };
      }
      if (Date.now() > deadline) {
        throw new Error(`no health verdict after 900 s:\n${sh("docker", ["logs", "--tail", "40", name])}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
  }

  before(async function () {
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-dockerd.sh")], { stdio: "inherit" });
    ref = (await labContainer(store, "frr")).ref;
  });

  after(function () {
    for (const name of containers) spawnSync("docker", ["rm", "--force", name], { stdio: "ignore" });
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("comes up configured for its host name with no manual step: healthy, report in the container log", async function () {
    const name = start("r2", lessonDir());
    const health = await verdict(name);
    assert.deepStrictEqual(health.status, "healthy", health.output);
    assert.match(health.output, /lesson configuration: 0 applied: \d+ changed, \d+ ok \(host r2\)/);
    const logs = spawnSync("docker", ["logs", name], { encoding: "utf8" });
    assert.match(logs.stdout + logs.stderr, /antidote-configure: applied: \d+ changed, \d+ ok \(host r2\)/);
    const port = Number(sh("docker", ["port", name, "22/tcp"]).split(":").pop());
    const target = { port, user: FRR.credentials.username, password: FRR.credentials.password };
    const r = await sshRun(target, "hostname; ip -o addr show dev eth1; sudo -n cat /etc/frr/frr.conf", {
      timeoutMs: 60_000,
    });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /^r2\n/);
    assert.match(r.stdout, /eth1\s+inet 10\.0\.12\.2\/24/);
    assert.ok(r.stdout.endsWith(fs.readFileSync(path.join(FIXTURES, "r2/frr.conf"), "utf8")), r.stdout);
  });

  it("is unhealthy, saying why, when the configuration is invalid", async function () {
    const lesson = lessonDir();
    fs.writeFileSync(path.join(lesson, "lesson.json"), JSON.stringify(BAD["unknown-interface.json"].doc));
    const health = await verdict(start("r1", lesson));
    assert.notStrictEqual(health.status, "healthy", health.output);
    assert.match(health.output, /^lesson configuration failed: 2 invalid/);
  });
});
