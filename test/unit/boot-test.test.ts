import * as assert from "assert";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { BootTest, bootTestStepArgs } from "../../lib/components/boot-test";
import { Template } from "../../lib/components/template";
import {
  BootTestReport,
  bootTestStep,
  CHECKS_ROLE,
  failureMessage,
  junitXml,
  readableConsole,
  TEST_SCRIPT_ROLE,
} from "../../lib/steps/boot-test";
import { StepSpec } from "../../lib/steps/step";
import { nicMac, qemuArgs, VmConfig } from "../../lib/vm/qemu";
import { sshBanner } from "../../lib/vm/ssh";
import { tempDir } from "../helpers";
import { useMocks, valueOf } from "../mocks";

const VM: VmConfig = {
  disk: "/w/overlay.qcow2",
  memoryMiB: 1024,
  cpus: 2,
  nics: 3,
  sshPort: 2222,
  console: "/s/console.log",
  accelerator: "tcg",
  firmware: "bios",
};

function report(overrides: Partial<BootTestReport> = {}): BootTestReport {
  return {
    image: "frr",
    disk: "d".repeat(64),
    passed: false,
    accelerator: "tcg",
    acceleratorReason: "KVM not usable",
    firmware: "bios",
    bootToSshMs: 14000,
    checks: [
      { name: "boot", pass: true, durationMs: 14000, message: "SSH-2.0-OpenSSH_9.2" },
      { name: "test.sh", pass: false, durationMs: 50, message: "test.sh exited with status 1; <&> \x01" },
    ],
    test: { exitStatus: 1, durationMs: 50, output: "bgp down <oops>\n" },
    consoleLog: "/nonexistent/console.log",
    ...overrides,
  };
}

describe("boot test arguments", () => {
  const complete = bootTestStepArgs({});

  it("BootTest's defaults: 1 GiB, 2 CPUs, one NIC, a TCG-sized SSH deadline, the lab's login, KVM when it works", () => {
    assert.deepStrictEqual(complete, {
      memoryMiB: 1024,
      cpus: 2,
      nics: 1,
      services: [],
      hostname: null,
      user: "antidote",
      password: "antidotepassword",
      sshTimeoutSeconds: 120,
      testTimeoutSeconds: 600,
      settleSeconds: 60,
      accelerator: "auto",
      firmware: "bios",
    });
  });

  it("the step fills in nothing: it requires every field", () => {
    assert.deepStrictEqual(bootTestStep.parseArgs({ ...complete }), complete);
    for (const field of Object.keys(complete)) {
      const partial: Record<string, unknown> = { ...complete };
      delete partial[field];
      assert.throws(() => bootTestStep.parseArgs(partial as never), new RegExp(`^Error: ${field}: expected`));
    }
  });

  it("names the field of a bad argument", () => {
    assert.throws(
      () => bootTestStep.parseArgs({ ...complete, nics: 0 }),
      /^Error: nics: expected a whole number from 1 to 16/,
    );
    assert.throws(
      () => bootTestStep.parseArgs({ ...complete, services: ["ssh; reboot"] }),
      /^Error: services\[0\]: /,
    );
    assert.throws(
      () => bootTestStep.parseArgs({ ...complete, accelerator: "hvf" }),
      /^Error: accelerator: expected one of/,
    );
    assert.throws(() => bootTestStep.parseArgs({ ...complete, hostname: "a b" }), /^Error: hostname: /);
  });
});

describe("QEMU command line", () => {
  it("boots the overlay through firmware (no -kernel), serial console to a file, nothing on a display", () => {
    const args = qemuArgs(VM);
    assert.ok(!args.includes("-kernel"));
    assert.ok(args.includes("-nodefaults"));
    assert.strictEqual(args[args.indexOf("-display") + 1], "none");
    assert.strictEqual(args[args.indexOf("-monitor") + 1], "none");
    assert.ok(args.includes("file,id=console,path=/s/console.log"));
    assert.ok(args.includes("file=/w/overlay.qcow2,format=qcow2,if=virtio,cache=unsafe,discard=unmap"));
    assert.ok(args.includes("-no-reboot"));
  });

  it("gives NIC 0 a restricted user net with SSH forwarded on loopback, and every NIC its MAC and slot in order", () => {
    const args = qemuArgs(VM);
    const netdevs = args.filter((_, i) => args[i - 1] === "-netdev");
    assert.deepStrictEqual(netdevs, [
      "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22",
      "user,id=net1,restrict=on",
      "user,id=net2,restrict=on",
    ]);
    const nics = args.filter((a) => a.startsWith("virtio-net-pci"));
    assert.deepStrictEqual(nics, [
      `virtio-net-pci,netdev=net0,mac=${nicMac(0)},addr=0x10`,
      `virtio-net-pci,netdev=net1,mac=${nicMac(1)},addr=0x11`,
      `virtio-net-pci,netdev=net2,mac=${nicMac(2)},addr=0x12`,
    ]);
  });

  it("uses KVM with the host CPU, or multi-threaded TCG, and OVMF for UEFI", () => {
    assert.ok(
      qemuArgs({ ...VM, accelerator: "kvm" })
        .join(" ")
        .includes("-accel kvm -cpu host"),
    );
    assert.ok(qemuArgs(VM).join(" ").includes("-accel tcg,thread=multi"));
    const uefi = qemuArgs({ ...VM, firmware: "uefi", uefiVars: "/w/vars.fd" }).join(" ");
    assert.match(uefi, /if=pflash,format=raw,unit=0,readonly=on,file=\S+OVMF_CODE/);
    assert.match(uefi, /if=pflash,format=raw,unit=1,file=\/w\/vars.fd/);
    assert.throws(() => qemuArgs({ ...VM, firmware: "uefi" }), /OVMF variables/);
  });
});

describe("boot test report", () => {
  it("writes JUnit XML with one case per check, failures counted and text escaped", () => {
    const text = junitXml(report());
    assert.match(text, /<testsuites tests="2" failures="1"/);
    assert.match(text, /<testcase classname="boot-test.frr" name="boot" time="14.000"\/>/);
    assert.match(text, /<failure message="test.sh exited with status 1; &lt;&amp;&gt; ">/);
    assert.match(text, /<system-out>bgp down &lt;oops&gt;\n<\/system-out>/);
    assert.ok(!text.includes("\x01"));
  });

  it("names the image and the failing check in the failure message, and not the accelerator's reason", () => {
    const message = failureMessage(report());
    assert.strictEqual(
      message,
      "boot test of image 'frr' failed: check 'test.sh': test.sh exited with status 1; <&> \x01\n(tcg; SSH after 14000 ms)",
    );
  });

  it("shows the serial console's last lines, readable, when SSH never answered", () => {
    const dir = tempDir("boot-unit");
    const consoleLog = path.join(dir, "console.log");
    const lines = Array.from({ length: 60 }, (_, i) => `\x1b[1;1Hline ${i}\r`);
    fs.writeFileSync(consoleLog, lines.join("\n") + "\n");
    const boot = { name: "boot", pass: false, durationMs: 300_000, message: "no SSH answer" };
    const message = failureMessage(report({ consoleLog, bootToSshMs: null, checks: [boot] }));
    assert.strictEqual(
      message,
      [
        "boot test of image 'frr' failed: check 'boot': no SSH answer",
        "(tcg; SSH never answered)",
        `serial console (${consoleLog}), last lines:`,
        ...[54, 55, 56, 57, 58, 59].map((i) => `line ${i}`),
      ].join("\n"),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("says so when the console is empty", () => {
    assert.match(failureMessage(report({ bootToSshMs: null })), /the console is empty/);
    assert.strictEqual(readableConsole("\x1b[2J\x1b[?25lok\r\n"), "ok\n");
  });
});

describe("SSH readiness", () => {
  function server(onConnection: (socket: net.Socket) => void): Promise<{ port: number; close: () => void }> {
    return new Promise((resolve) => {
      const s = net.createServer(onConnection);
      s.listen(0, "127.0.0.1", () =>
        resolve({ port: (s.address() as net.AddressInfo).port, close: () => s.close() }),
      );
    });
  }

  it("sees an SSH banner, and not a connection that is accepted but silent (what QEMU's forward does)", async () => {
    const ssh = await server((socket) => socket.end("SSH-2.0-OpenSSH_9.2p1 Debian\r\n"));
    const silent = await server(() => undefined);
    try {
      assert.strictEqual(await sshBanner(ssh.port, 1000), "SSH-2.0-OpenSSH_9.2p1 Debian");
      assert.strictEqual(await sshBanner(silent.port, 300), undefined);
    } finally {
      ssh.close();
      silent.close();
    }
  });
});

describe("BootTest component (Pulumi mocks)", () => {
  let dir: string;
  beforeEach(async () => {
    await useMocks();
    dir = tempDir("boot-component");
    fs.writeFileSync(path.join(dir, "d.txt"), "disk\n");
    fs.writeFileSync(path.join(dir, "test.sh"), "#!/bin/sh\ntrue\n");
  });

  it("reads the checks script and the image's test.sh as inputs, so editing either re-tests", async () => {
    const disk = new Template("disk1", { template: path.join(dir, "d.txt") });
    const test = new BootTest("bt1", {
      disk,
      testScript: path.join(dir, "test.sh"),
      nics: 2,
      services: ["frr"],
    });
    const spec = JSON.parse((await valueOf(test.command.stdin)) as string) as StepSpec;
    assert.strictEqual(spec.kind, "boot-test");
    assert.deepStrictEqual(Object.keys(spec.files).sort(), [CHECKS_ROLE, TEST_SCRIPT_ROLE]);
    assert.deepStrictEqual(spec.parents, { disk: disk.key });
    const before = test.key;
    fs.writeFileSync(path.join(dir, "test.sh"), "#!/bin/sh\nfalse\n");
    const after = new BootTest("bt2", {
      disk,
      testScript: path.join(dir, "test.sh"),
      nics: 2,
      services: ["frr"],
    });
    assert.notStrictEqual(after.key, before);
  });
});
