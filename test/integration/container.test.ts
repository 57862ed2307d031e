import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { loadMetadata } from "../../lib/metadata/metadata";
import { resourcePerformers } from "../../lib/runner/docker-resources";
import { RunReport } from "../../lib/runner/local-runner";
import { CONSOLE_PORT, ContainerRecord } from "../../lib/steps/container";
import { diskImportStep } from "../../lib/steps/disk-import";
import { inspectImage } from "../../lib/steps/docker";
import { runStep } from "../../lib/steps/run";
import { StepResult, StepSpec } from "../../lib/steps/step";
import { sshRun, SshTarget } from "../../lib/vm/ssh";
import { buildContainer, containerSpec, testLauncher } from "../fixtures/container";
import { bootTestSpec, debianBaseDisk, definitions, spec } from "../fixtures/disk";
import { wireLink } from "../fixtures/topology";
import { PROJECT_ROOT, runCli, sharedTestStore, tempDir } from "../helpers";

const REGISTRY = "127.0.0.1:5000";
const metadata = loadMetadata(path.join(PROJECT_ROOT, "images", "debian-base"));

function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

function quietly(command: string, args: string[]): void {
  spawnSync(command, args, { stdio: "ignore" });
}

function containerLog(name: string): string {
  const logs = spawnSync("docker", ["logs", name], { encoding: "utf8" });
  return logs.stdout + logs.stderr;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client of the serial console's TCP port: what it received so far, as text. */
function consoleClient(port: number): { socket: net.Socket; received: () => string } {
  const socket = net.connect(port, "127.0.0.1");
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
  socket.on("error", () => {});
  return { socket, received: () => received };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

describe("ContainerImage (real dockerd and registry)", function () {
  const store = sharedTestStore();
  let launcher: StepResult;
  let container: StepResult;
  let baseContainerSpec: StepSpec;

  before(async function () {
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-dockerd.sh")], { stdio: "inherit" });
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-registry.sh")], { stdio: "inherit" });
    // The rootfs, kernel, disk and boot test the other integration tests built (or build them here, once).
    const { disk, kernel } = await debianBaseDisk(store);
    const bootTest = await runStep(bootTestSpec("debian-base", disk.key), {
      store,
      definitions,
      root: PROJECT_ROOT,
      progress: () => {},
    });
    launcher = await testLauncher(store);
    baseContainerSpec = containerSpec("debian-base-container", "debian-base", metadata, {
      disk: disk.key,
      launcher: launcher.key,
      bootTest: bootTest.key,
      kernel: kernel.key,
    });
    container = await buildContainer(store, baseContainerSpec);
  });

  it("builds a launcher base of at most 250 MB and the lab image as that layer plus the disk's", async () => {
    const record = container.outputs as unknown as ContainerRecord;
    const base = await inspectImage(String(launcher.outputs.ref));
    assert.ok(base, "the launcher is in dockerd");
    assert.ok(base.size <= 250e6, `launcher base is ${(base.size / 1e6).toFixed(1)} MB`);
    assert.deepStrictEqual(record.layers.slice(0, base.layers.length), base.layers);
    assert.strictEqual(record.ownLayers.length, 1);
    const labels = JSON.parse(
      sh("docker", ["image", "inspect", "-f", "{{json .Config.Labels}}", record.ref]),
    );
    assert.strictEqual(labels["org.opencontainers.image.title"], "debian-base");
    assert.deepStrictEqual(JSON.parse(labels["dev.antidote.interfaces"]), metadata.interfaces);
    assert.deepStrictEqual(JSON.parse(labels["dev.antidote.credentials"]), metadata.credentials);
    const exposed = JSON.parse(
      sh("docker", ["image", "inspect", "-f", "{{json .Config.ExposedPorts}}", record.ref]),
    );
    assert.deepStrictEqual(Object.keys(exposed).sort(), ["22/tcp", `${CONSOLE_PORT}/tcp`]);
  });

  it("without CLAB_INTFS boots at once, its NICs unplugged until their interfaces appear; a bad CLAB_INTFS fails", async function () {
    const ref = String(container.outputs.ref);
    const plain = `antidote-it-plain-${process.pid}`;
    try {
      sh("docker", [
        "run",
        "--detach",
        "--name",
        plain,
        "--cap-add",
        "NET_ADMIN",
        "--env",
        "ANTIDOTE_ACCEL=tcg",
        ref,
      ]);
      await waitFor("the VM NIC of the missing eth1 to be unplugged", 60_000, () =>
        /VM NIC\(s\) 1 unplugged until eth1 appear/.test(containerLog(plain)) ? true : undefined,
      );
      assert.doesNotMatch(containerLog(plain), /waiting up to/, "no wait without CLAB_INTFS");
    } finally {
      quietly("docker", ["rm", "--force", plain]);
    }
    for (const [env, message] of [
      ["CLAB_INTFS=16", /error: CLAB_INTFS is 16: a VM has at most 15 data NICs \(16 in all\)/],
      ["CLAB_INTFS=two", /error: CLAB_INTFS must be a whole number, got 'two'/],
      ["ANTIDOTE_BOOT=uefi", /error: ANTIDOTE_BOOT must be auto, snapshot, direct or firmware, got 'uefi'/],
      [
        "ANTIDOTE_BOOT=snapshot ANTIDOTE_MEMORY_MIB=256",
        /error: ANTIDOTE_BOOT=snapshot: 256 MiB and 1 CPU\(s\), the snapshot's VM has 512 MiB and 1/,
      ],
      [
        "ANTIDOTE_BOOT=snapshot ANTIDOTE_ACCEL=kvm",
        /error: ANTIDOTE_BOOT=snapshot: the accelerator is kvm, the snapshot's is tcg/,
      ],
      [
        "ANTIDOTE_MANAGEMENT_NET=10.0.2.0",
        /error: ANTIDOTE_MANAGEMENT_NET must be an IPv4 subnet from \/8 to \/24 \(a\.b\.c\.d\/n\), got '10\.0\.2\.0'/,
      ],
      [
        "CLAB_INTFS=5 ANTIDOTE_BOOT=direct",
        /error: ANTIDOTE_BOOT=direct: 6 NICs, the disk and 2 shares need 9 virtio-mmio slots, microvm has 8/,
      ],
    ] as const) {
      const envs = env.split(" ").flatMap((e) => ["--env", e]);
      const run = spawnSync("docker", ["run", "--rm", ...envs, ref], { encoding: "utf8" });
      assert.strictEqual(run.status, 1, run.stderr);
      assert.match(run.stderr, message);
    }
    // A snapshot whose guest never gets to antidote-resume in time: an error naming the step, and no files left that
    // a start would take for a snapshot.
    const snapshot = spawnSync(
      "docker",
      [
        "run",
        "--rm",
        "--env",
        "ANTIDOTE_SNAPSHOT_TIMEOUT=2",
        "--entrypoint",
        "/bin/bash",
        ref,
        "-c",
        'antidote-launch --snapshot /tmp/snapshot; echo "status $? files: $(ls -A /tmp/snapshot)"',
      ],
      { encoding: "utf8" },
    );
    assert.match(snapshot.stderr, /error: snapshot: the guest did not reach antidote-resume in 2s/);
    assert.match(snapshot.stdout, /status 1 files: *$/m);
  });

  // Every boot path: the image's snapshot restored (the default under TCG of an image that has one), the disk's kernel
  // booted directly on microvm (the default of an image that has it, without a snapshot or on KVM), and the fallback,
  // pc with firmware and GRUB (ANTIDOTE_BOOT=firmware, what a vendor disk gets).
  for (const boot of ["snapshot", "direct", "firmware"] as const)
    describe(`a running lab container, wired as containerlab wires a node (${boot} boot)`, function () {
      const tag = `ait${boot[0]}${process.pid}`;
      const name = `antidote-it-${boot}-${process.pid}`;
      const netns = `antidote-it-${boot}-${process.pid}`;
      const lesson = tempDir("lesson");
      // How long the launcher waits for the links: eth1 comes within it, eth2 only after it.
      const interfaceTimeout = 20;
      let target: SshTarget;
      let consolePort: number;
      let logWhenEth1Came = "";

      /** A lab link as containerlab makes one, from the container's eth<index> to this test's namespace (`address`). */
      function link(pid: string, index: number, address: string): void {
        const outside = `${tag}o${index}`;
        wireLink(`${tag}l${index}`, { pid, ifname: `eth${index}` }, { netns, ifname: outside });
        sh("ip", ["-n", netns, "addr", "add", address, "dev", outside]);
      }

      before(async function () {
        fs.chmodSync(lesson, 0o755);
        fs.writeFileSync(path.join(lesson, "hello.txt"), `lesson file ${process.pid}\n`);
        fs.chmodSync(path.join(lesson, "hello.txt"), 0o644);
        sh("docker", [
          "run",
          "--detach",
          "--name",
          name,
          "--cap-add",
          "NET_ADMIN",
          // As vrnetlab and containerlab run QEMU containers: the node comes with the host's mode, 0600.
          "--device",
          "/dev/net/tun",
          "--publish",
          "127.0.0.1::22",
          "--publish",
          `127.0.0.1::${CONSOLE_PORT}`,
          "--volume",
          `${lesson}:/antidote:ro`,
          // What containerlab gives a node with two links: their count, and a terminal.
          "--env",
          "CLAB_INTFS=2",
          "--tty",
          // The metadata's count (and this) give way to CLAB_INTFS.
          "--env",
          "ANTIDOTE_NICS=5",
          "--env",
          `ANTIDOTE_INTERFACE_TIMEOUT=${interfaceTimeout}`,
          "--env",
          "ANTIDOTE_ACCEL=tcg",
          "--env",
          `ANTIDOTE_BOOT=${boot}`,
          String(container.outputs.ref),
        ]);
        // containerlab moves a node's links in after the container started: eth1 a few seconds after the launcher
        // began waiting, eth2 only once it gave up and booted.
        await waitFor("the launcher to wait for the links", 60_000, () =>
          /antidote-launch: waiting up to/.test(containerLog(name)) ? true : undefined,
        );
        await sleep(2000);
        const pid = sh("docker", ["inspect", "-f", "{{.State.Pid}}", name]);
        sh("ip", ["netns", "add", netns]);
        logWhenEth1Came = containerLog(name);
        link(pid, 1, "192.0.2.1/24");
        await waitFor("the launcher to boot the VM", (interfaceTimeout + 60) * 1000, () =>
          /antidote-launch: booting/.test(containerLog(name)) ? true : undefined,
        );
        link(pid, 2, "198.51.100.1/24");
        const port = (containerPort: number) =>
          Number(
            sh("docker", ["port", name, `${containerPort}/tcp`])
              .split(":")
              .pop(),
          );
        target = {
          port: port(22),
          user: metadata.credentials.username,
          password: metadata.credentials.password,
        };
        consolePort = port(CONSOLE_PORT);
      });

      after(function () {
        quietly("docker", ["rm", "--force", name]);
        quietly("ip", ["netns", "del", netns]);
        fs.rmSync(lesson, { recursive: true, force: true });
      });

      it("becomes healthy once the VM accepts an SSH login", async function () {
        const started = Date.now();
        await waitFor("the container to be healthy", 900_000, () => {
          const status = sh("docker", ["inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", name]);
          if (status.startsWith("exited"))
            throw new Error(`the container exited:\n${sh("docker", ["logs", "--tail", "40", name])}`);
          return status === "running healthy" ? true : undefined;
        });
        console.log(`      healthy after ${((Date.now() - started) / 1000).toFixed(0)} s`);
        const login = await sshRun(target, "id -un && hostname && ip -o -4 addr show dev eth0", {
          timeoutMs: 60_000,
        });
        assert.strictEqual(login.status, 0, login.stderr);
        assert.match(login.stdout, new RegExp(`^${metadata.credentials.username}\\n`));
        // The management network is out of the 10.0.x.0/24 lessons number their links with.
        assert.match(login.stdout, /eth0\s+inet 100\.127\.255\.15\/24 /);
      });

      if (boot === "snapshot")
        it("makes each restored VM its own: the container's MACs, the clock, its own host key; absent NICs have no carrier", async function () {
          const inGuest =
            // carrier reads only on an interface that is up.
            "for i in 1 2 3 4; do sudo -n ip link set eth$i up; done; sleep 1; " +
            "cat /sys/class/net/eth[0-4]/address /sys/class/net/eth[0-4]/carrier; date +%s; " +
            "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub; " +
            // The launcher's key: private and public halves agree, root's alone, and it is what sshd serves.
            "key=$(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub); " +
            '[ "$(sudo -n ssh-keygen -y -f /etc/ssh/ssh_host_ed25519_key | cut -d\' \' -f2)" = "$key" ] && echo halves agree; ' +
            "sudo -n stat -c '%a %U' /etc/ssh/ssh_host_ed25519_key; " +
            '[ "$(ssh-keyscan -t ed25519 127.0.0.1 2>/dev/null | cut -d\' \' -f3)" = "$key" ] && echo served';
          const macBase = (container: string) =>
            "52:54:00:" +
            sh("docker", [
              "inspect",
              "-f",
              "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}",
              container,
            ])
              .split(":")
              .slice(4)
              .join(":");
          const here = await sshRun(target, inGuest, { timeoutMs: 60_000 });
          assert.strictEqual(here.status, 0, here.stderr);
          const lines = here.stdout.trim().split("\n");
          const base = macBase(name);
          assert.deepStrictEqual(
            lines.slice(0, 5),
            [0, 1, 2, 3, 4].map((i) => `${base}:0${i}`),
          );
          // eth0 to eth2 are this start's (CLAB_INTFS=2), eth3 and eth4 the snapshot's spare ones.
          assert.deepStrictEqual(lines.slice(5, 10), ["1", "1", "1", "0", "0"]);
          assert.deepStrictEqual(lines.slice(12, 15), ["halves agree", "600 root", "served"]);
          assert.match(
            containerLog(name),
            /antidote-resume: resumed from the snapshot: .*, the launcher's host key/,
          );
          const skew = Math.abs(Number(lines[10]) - Date.now() / 1000);
          assert.ok(
            skew < 10,
            `the guest's clock is ${skew.toFixed(0)} s off the host's, not the snapshot's`,
          );
          // A second VM from the same snapshot, one NIC and no tap (no NET_ADMIN): a host key of its own.
          const other = `${name}-2`;
          try {
            sh("docker", [
              "run",
              "--detach",
              "--name",
              other,
              "--publish",
              "127.0.0.1::22",
              "--env",
              "ANTIDOTE_NICS=1",
              "--env",
              "ANTIDOTE_ACCEL=tcg",
              String(container.outputs.ref),
            ]);
            await waitFor("the second container to be healthy", 600_000, () =>
              sh("docker", ["inspect", "-f", "{{.State.Health.Status}}", other]) === "healthy"
                ? true
                : undefined,
            );
            const port = Number(sh("docker", ["port", other, "22/tcp"]).split(":").pop());
            const there = await sshRun({ ...target, port }, inGuest, { timeoutMs: 60_000 });
            assert.strictEqual(there.status, 0, there.stderr);
            const otherLines = there.stdout.trim().split("\n");
            assert.match(containerLog(other), /antidote-launch: booting \/disk\/disk\.qcow2 \(snapshot\)/);
            assert.strictEqual(otherLines[0], `${macBase(other)}:00`);
            assert.deepStrictEqual(otherLines.slice(5, 10), ["1", "0", "0", "0", "0"]);
            assert.notStrictEqual(
              otherLines[11],
              lines[11],
              "two VMs of one snapshot have different host keys",
            );
          } finally {
            quietly("docker", ["rm", "--force", other]);
          }
        });

      it("waits for CLAB_INTFS links before booting, one VM NIC per link; a link later than that is plugged in", function () {
        assert.doesNotMatch(logWhenEth1Came, /antidote-launch: booting/, "still waiting when eth1 came");
        const log = containerLog(name);
        const order = [
          `antidote-launch: waiting up to ${interfaceTimeout}s for eth1..eth2 (CLAB_INTFS=2)`,
          "antidote-launch: eth1 (mtu 1500) stitched to VM NIC 1",
          `antidote-launch: eth2 not there after ${interfaceTimeout}s: booting without`,
          `antidote-launch: booting /disk/disk.qcow2 (${boot}): tcg, 512 MiB, 1 CPU(s), 3 NIC(s)`,
          "antidote-launch: eth2 (mtu 1500) stitched to VM NIC 2",
          "antidote-launch: VM NIC 2 plugged in",
        ].map((line) => [line, log.indexOf(line)] as const);
        for (const [line, at] of order) assert.ok(at >= 0, `the log has "${line}":\n${log}`);
        assert.deepStrictEqual(
          order.map(([line]) => line),
          [...order].sort((a, b) => a[1] - b[1]).map(([line]) => line),
          `in this order:\n${log}`,
        );
      });

      it("stitches eth1 and eth2 to the VM's NICs: the namespace pings addresses set over SSH on both", async function () {
        const configure = await sshRun(
          target,
          "sudo -n ip addr add 192.0.2.2/24 dev eth1 && sudo -n ip link set eth1 up && " +
            "sudo -n ip addr add 198.51.100.2/24 dev eth2 && sudo -n ip link set eth2 up && " +
            "sleep 1 && cat /sys/class/net/eth1/carrier /sys/class/net/eth2/carrier",
          { timeoutMs: 60_000 },
        );
        assert.strictEqual(configure.status, 0, configure.stderr);
        assert.strictEqual(configure.stdout, "1\n1\n", "the VM sees a carrier on both NICs");
        for (const address of ["192.0.2.2", "198.51.100.2"]) {
          const ping = spawnSync("ip", ["netns", "exec", netns, "ping", "-c", "3", "-W", "5", address], {
            encoding: "utf8",
          });
          assert.strictEqual(ping.status, 0, `ping ${address} failed:\n${ping.stdout}${ping.stderr}`);
        }
      });

      it("exports the lesson directory over virtio-9p: tag antidote mounted read-only at boot, and tag hostshare", async function () {
        const read = await sshRun(
          target,
          "findmnt -n -r -o FSTYPE,SOURCE /antidote && cat /antidote/hello.txt && " +
            "! sudo -n touch /antidote/x 2>/dev/null && " +
            // How NRE Labs' lesson content mounts it.
            "sudo -n mkdir -p /mnt/hostshare && " +
            "sudo -n mount -t 9p -o trans=virtio,version=9p2000.L,ro hostshare /mnt/hostshare && " +
            "cat /mnt/hostshare/hello.txt && sudo -n umount /mnt/hostshare",
          { timeoutMs: 60_000 },
        );
        assert.strictEqual(read.status, 0, read.stderr);
        const file = `lesson file ${process.pid}\n`;
        assert.strictEqual(read.stdout, `9p antidote\n${file}${file}`);
      });

      it("serves the serial console on TCP 5000: a login prompt, one client at a time, the next once it leaves", async function () {
        const first = consoleClient(consolePort);
        first.socket.write("\r");
        await waitFor("a login prompt for the first client", 60_000, () =>
          /login:/.test(first.received()) ? true : undefined,
        );
        const second = consoleClient(consolePort);
        try {
          second.socket.write("\r");
          await sleep(3000);
          assert.strictEqual(
            second.received(),
            "",
            "nothing for a second client while the first is connected",
          );
          first.socket.destroy();
          await waitFor("a login prompt for the second client, the first gone", 60_000, () =>
            /login:/.test(second.received()) ? true : undefined,
          );
        } finally {
          first.socket.destroy();
          second.socket.destroy();
        }
      });

      it("powers the VM down on docker stop within Docker's default timeout and exits 0, the console in the log", function () {
        const started = Date.now();
        sh("docker", ["stop", name]);
        const seconds = (Date.now() - started) / 1000;
        const output = containerLog(name);
        // A restored VM booted when the image was built: its console starts where the snapshot was taken.
        const consoleLine =
          boot === "snapshot" ? /antidote-resume: resumed from the snapshot/ : /Linux version/;
        assert.match(output, consoleLine, "the guest's console messages are in the container log");
        assert.match(output, /login:/, "so is what the console clients were shown");
        assert.doesNotMatch(output, /did not power down/, "the guest powered itself down");
        assert.match(output, /reboot: Power down/);
        assert.match(output, /antidote-launch: stopped/);
        assert.strictEqual(sh("docker", ["inspect", "-f", "{{.State.ExitCode}}", name]), "0");
        console.log(`      docker stop: ${seconds.toFixed(1)} s`);
      });
    });

  describe("publishing to the local registry", function () {
    const pushed: string[] = [];
    after(function () {
      for (const ref of pushed) quietly("docker", ["image", "rm", ref]);
    });

    async function push(ref: string, repository: string, tagName: string): Promise<string> {
      const targetImage = `${REGISTRY}/${repository}:${tagName}`;
      await resourcePerformers["docker:index/tag:Tag"].perform({ sourceImage: ref, targetImage });
      pushed.push(targetImage);
      // The provider the program gives a registry without a login (lib/publishing.ts).
      const provider = { registryAuth: [{ address: `http://${REGISTRY}`, authDisabled: true }] };
      const { outputs } = await resourcePerformers["docker:index/registryImage:RegistryImage"].perform(
        { name: targetImage },
        { provider },
      );
      return String(outputs.sha256Digest);
    }

    function manifestLayers(repository: string, digest: string): string[] {
      const manifest = JSON.parse(
        sh("curl", [
          "-fsS",
          "-H",
          "Accept: application/vnd.docker.distribution.manifest.v2+json",
          `http://${REGISTRY}/v2/${repository}/manifests/${digest}`,
        ]),
      ) as { layers: { digest: string }[] };
      return manifest.layers.map((l) => l.digest);
    }

    it("pushes a lab image and pulls it back by digest; a second image uploads only its own layer", async function () {
      const record = container.outputs as unknown as ContainerRecord;
      // As on a machine whose dockerd never built it: the step, answered from the store, builds it again first —
      // what lets the docker provider's Tag find it under `pulumi up`.
      // --force: another test's container may run this image; the tag goes, the image it runs stays.
      sh("docker", ["image", "rm", "--force", record.ref]);
      const again = await buildContainer(store, baseContainerSpec);
      assert.ok(again.cached, "answered from the store");
      const digest = await push(record.ref, "debian-base", container.key);
      assert.match(digest, /^sha256:[0-9a-f]{64}$/);
      const byDigest = `${REGISTRY}/debian-base@${digest}`;
      sh("docker", ["pull", "--quiet", byDigest]);
      pushed.push(byDigest);
      // Built again, it has the very layers the artifact recorded (its configuration, dated by the build, differs).
      const rebuilt = await inspectImage(record.ref);
      assert.deepStrictEqual(rebuilt?.layers, record.layers);
      assert.strictEqual((await inspectImage(byDigest))?.id, rebuilt?.id);

      // A second, untested image: a 1 MiB vendor disk on the same launcher, new at every run (so is its layer).
      const dir = tempDir("vendor-disk");
      const raw = path.join(dir, "vendor.img");
      const content = Buffer.alloc(1 << 20);
      content.write(`vendor disk ${process.pid} ${Date.now()}`);
      fs.writeFileSync(raw, content);
      const sha256 = sh("sha256sum", [raw]).split(" ")[0];
      const disk = await runStep(
        spec("disk-import", "vendor", { source: raw, sha256, format: "raw", provision: null }),
        {
          store,
          definitions: { "disk-import": diskImportStep },
          root: PROJECT_ROOT,
          progress: () => {},
        },
      );
      fs.rmSync(dir, { recursive: true, force: true });
      const vendor = await buildContainer(
        store,
        containerSpec(
          "vendor-container",
          "vendor",
          { ...metadata, name: "vendor" },
          {
            disk: disk.key,
            launcher: launcher.key,
          },
        ),
      );
      const vendorRef = String(vendor.outputs.ref);
      const vendorTarget = `${REGISTRY}/vendor:${vendor.key}`;
      sh("docker", ["tag", vendorRef, vendorTarget]);
      pushed.push(vendorTarget);
      const output = sh("docker", ["push", vendorTarget]);
      // Each layer's last line is its outcome ("Preparing", "Waiting"… come before it).
      const outcomes = new Map<string, string>();
      for (const match of output.matchAll(/^([0-9a-f]{12}): (.*)$/gm)) outcomes.set(match[1], match[2]);
      // Progress lines name layers by the first 12 digits of their diff ID.
      const own = (vendor.outputs as unknown as ContainerRecord).ownLayers.map((l) => l.slice(7, 19));
      const uploaded = [...outcomes].filter(([, outcome]) => outcome === "Pushed").map(([id]) => id);
      assert.deepStrictEqual(uploaded, own, `only the disk layer is uploaded:\n${output}`);
      assert.strictEqual(outcomes.size, 2, output);

      const vendorDigest = /digest: (sha256:[0-9a-f]{64})/.exec(output)![1];
      const [baseLayers, vendorLayers] = [
        manifestLayers("debian-base", digest),
        manifestLayers("vendor", vendorDigest),
      ];
      assert.strictEqual(baseLayers[0], vendorLayers[0], "both images start with the same launcher layer");
      assert.notStrictEqual(baseLayers[1], vendorLayers[1]);
      console.log(`      shared launcher layer ${baseLayers[0]}`);
    });
  });
});

describe("antidote-images up --stack local: build, tag and push a lab image", function () {
  const root = tempDir("container-project");
  after(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("pushes to the stack's registry and exports the reference by digest", async function () {
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-registry.sh")], { stdio: "inherit" });
    for (const link of ["lib", "bin", "node_modules"])
      fs.symlinkSync(path.join(PROJECT_ROOT, link), path.join(root, link));
    for (const file of ["Pulumi.yaml", "index.ts", "tsconfig.json"])
      fs.copyFileSync(path.join(PROJECT_ROOT, file), path.join(root, file));
    // An untested vendor disk of 1 MiB: the image is about publishing, not booting.
    const dir = path.join(root, "images", "tiny");
    fs.mkdirSync(dir, { recursive: true });
    sh("qemu-img", ["create", "-q", "-f", "qcow2", path.join(dir, "tiny.qcow2"), "1M"]);
    const sha256 = sh("sha256sum", [path.join(dir, "tiny.qcow2")]).split(" ")[0];
    // The store, dockerd and the registry outlive a test run: a description of its own gives this run new keys, so
    // its tags and pushes are new and must report "built".
    fs.writeFileSync(
      path.join(dir, "metadata.yaml"),
      `name: tiny\ndescription: A 1 MiB vendor disk, published untested (run ${Date.now()}).\n`,
    );
    fs.writeFileSync(
      path.join(dir, "image.ts"),
      [
        'import * as path from "path";',
        'import { ContainerImage, Qcow2Disk } from "../../lib";',
        'export const disk = Qcow2Disk.import("tiny-disk", {',
        `  source: path.join(__dirname, "tiny.qcow2"), sha256: "${sha256}", format: "qcow2", image: "tiny",`,
        "});",
        'export const container = new ContainerImage("tiny-container", { image: "tiny", disk, allowUntested: true });',
        "",
      ].join("\n"),
    );
    fs.mkdirSync(path.join(root, "stacks"));
    fs.writeFileSync(
      path.join(root, "stacks", "Pulumi.local.yaml"),
      `config:\n  antidote-images:store: ${sharedTestStore().location}\n  antidote-images:registry: ${REGISTRY}\n`,
    );
    const up = (): { report: RunReport; statuses: Record<string, string> } => {
      const run = runCli(root, ["up", "--stack", "local", "--json"], { timeoutMs: 1_500_000 });
      assert.strictEqual(run.status, 0, run.stderr);
      const report = JSON.parse(run.stdout) as RunReport;
      return { report, statuses: Object.fromEntries(report.steps.map((s) => [s.name, s.status])) };
    };
    const publications = [
      "tiny-container-tag-key",
      "tiny-container-push-key",
      "tiny-container-tag-moving",
      "tiny-container-push-moving",
    ];
    const { statuses: first } = up();
    for (const name of publications)
      assert.strictEqual(first[name], "built", `${name}: ${JSON.stringify(first)}`);
    // Publishing again changes nothing in dockerd or the registry, and says so.
    const { report, statuses: second } = up();
    for (const name of publications)
      assert.strictEqual(second[name], "cached", `${name}: ${JSON.stringify(second)}`);
    const outputs = report.outputs as { images: { tiny: Record<string, { reference?: string }> } };
    const reference = outputs.images.tiny["tiny-container"].reference;
    assert.match(String(reference), /^127\.0\.0\.1:5000\/tiny@sha256:[0-9a-f]{64}$/);
    sh("docker", ["pull", "--quiet", String(reference)]);
    quietly("docker", ["image", "rm", String(reference), `${REGISTRY}/tiny:latest`]);
  });
});
