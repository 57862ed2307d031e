import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { diskStepArgs, Qcow2Disk } from "../../lib/components/qcow2-disk";
import { Template } from "../../lib/components/template";
import { bzImageRelease, diskStep, kernelCommandLine } from "../../lib/steps/disk";
import { diskImportStep } from "../../lib/steps/disk-import";
import { provisioningScript } from "../../lib/steps/disk-provision";
import { imagePasswordHash } from "../../lib/steps/rootfs/password";
import { StepSpec } from "../../lib/steps/step";
import { earlyConfig, grubConfig, installBiosBootCode } from "../../lib/vm/grub";
import { derivedUuid, diskLayout, MIB, parseSize, sfdiskScript } from "../../lib/vm/layout";
import { tempDir } from "../helpers";
import { useMocks, valueOf } from "../mocks";

const KEY = "a".repeat(64);

describe("disk layout", () => {
  it("puts root first by number and last on the disk, BIOS boot and ESP before it, MiB-aligned", () => {
    const layout = diskLayout(KEY, 2048 * MIB, true);
    assert.deepStrictEqual(
      layout.partitions.map((p) => [p.number, p.name, p.start, p.size]),
      [
        [14, "bios", 2048, 2048],
        [15, "esp", 4096, 32768],
        [1, "root", 36864, (2048 - 18 - 1) * 2048],
      ],
    );
  });

  it("leaves out the EFI system partition for a BIOS-only disk", () => {
    const layout = diskLayout(KEY, 512 * MIB, false);
    assert.deepStrictEqual(
      layout.partitions.map((p) => p.name),
      ["bios", "root"],
    );
    assert.strictEqual(layout.partitions[1].start, 4096);
  });

  it("refuses a disk too small for a root partition", () => {
    assert.throws(() => diskLayout(KEY, 16 * MIB, true), /leaves no room for the root partition/);
  });

  it("derives stable version-4 UUIDs that differ by key and by purpose", () => {
    const a = derivedUuid(KEY, "root");
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.strictEqual(a, derivedUuid(KEY, "root"));
    assert.notStrictEqual(a, derivedUuid(KEY, "disk"));
    assert.notStrictEqual(a, derivedUuid("b".repeat(64), "root"));
  });

  it("writes a partition table sfdisk reads back with the same numbers, places and UUIDs", () => {
    const dir = tempDir("disk-unit");
    const image = path.join(dir, "disk.raw");
    fs.closeSync(fs.openSync(image, "w"));
    fs.truncateSync(image, 256 * MIB);
    const layout = diskLayout(KEY, 256 * MIB, true);
    execFileSync("sfdisk", ["--no-reread", "--no-tell-kernel", image], {
      input: sfdiskScript(layout, image),
      stdio: ["pipe", "ignore", "pipe"],
    });
    const table = JSON.parse(execFileSync("sfdisk", ["--json", image], { encoding: "utf8" })) as {
      partitiontable: {
        id: string;
        partitions: { node: string; start: number; size: number; uuid: string }[];
      };
    };
    assert.strictEqual(table.partitiontable.id, layout.diskId);
    const read = table.partitiontable.partitions
      .map((p) => [Number(/(\d+)$/.exec(p.node)![1]), p.start, p.size, p.uuid])
      .sort((a, b) => (a[1] as number) - (b[1] as number));
    assert.deepStrictEqual(
      read,
      layout.partitions.map((p) => [p.number, p.start, p.size, p.uuid]),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("parses sizes in binary units and refuses what is not a whole MiB", () => {
    assert.strictEqual(parseSize("2GiB"), 2048 * MIB);
    assert.strictEqual(parseSize("512M"), 512 * MIB);
    assert.strictEqual(parseSize(1048576), MIB);
    assert.throws(() => parseSize("1.5G"), /not a size/);
    assert.throws(() => parseSize("1000k"), /not a whole number of MiB/);
  });
});

describe("disk step arguments and boot configuration", () => {
  const complete = diskStepArgs({});

  it("Qcow2Disk's defaults: 2 GiB, BIOS + UEFI, no GRUB timeout and no extra parameters", () => {
    assert.deepStrictEqual(complete, {
      sizeBytes: 2048 * MIB,
      kernelCmdline: [],
      uefi: true,
      grubTimeoutSeconds: 0,
    });
  });

  it("the step fills in nothing: it requires every field", () => {
    assert.deepStrictEqual(diskStep.parseArgs({ ...complete }), complete);
    for (const field of Object.keys(complete)) {
      const partial: Record<string, unknown> = { ...complete };
      delete partial[field];
      assert.throws(() => diskStep.parseArgs(partial as never), new RegExp(`^Error: ${field}: expected`));
    }
  });

  it("names the field of a bad argument", () => {
    assert.throws(
      () => diskStep.parseArgs({ ...complete, sizeBytes: 100 }),
      /^Error: sizeBytes: expected a whole number of MiB/,
    );
    assert.throws(
      () => diskStep.parseArgs({ ...complete, kernelCmdline: ["quiet", "a b"] }),
      /^Error: kernelCmdline\[1\]: expected a kernel parameter/,
    );
    assert.throws(
      () => diskStep.parseArgs({ ...complete, uefi: "yes" }),
      /^Error: uefi: expected true or false/,
    );
  });

  it("boots root by PARTUUID with the serial console last, classic NIC names on request, the image's own last", () => {
    const line = kernelCommandLine("ABCD-1", { netNaming: "kernel" }, ["quiet"]);
    assert.strictEqual(line, "root=PARTUUID=abcd-1 ro console=tty0 console=ttyS0,115200 net.ifnames=0 quiet");
    assert.doesNotMatch(kernelCommandLine("x", {}, []), /ifnames/);
  });

  it("configures GRUB for the serial console with no initrd, finding root by filesystem UUID", () => {
    const cfg = grubConfig({
      kernel: "/boot/vmlinuz-6.1",
      cmdline: "root=PARTUUID=x ro",
      timeoutSeconds: 1,
      title: "t",
    });
    assert.match(cfg, /^serial --unit=0 --speed=115200$/m);
    assert.match(cfg, /^terminal_input serial console$/m);
    assert.match(cfg, /^set timeout=1$/m);
    assert.match(cfg, /^ {2}linux \/boot\/vmlinuz-6\.1 root=PARTUUID=x ro$/m);
    assert.doesNotMatch(cfg, /initrd/);
    assert.match(earlyConfig("u-u-i-d"), /^search --no-floppy --fs-uuid --set=root u-u-i-d$/m);
  });

  it("reads the kernel release from a bzImage setup header", () => {
    const image = Buffer.alloc(0x1000);
    image.write("HdrS", 0x202, "latin1");
    image.writeUInt16LE(0x300, 0x20e);
    image.write("6.1.192-antidote (root@build) #1 SMP\0", 0x500, "latin1");
    assert.strictEqual(bzImageRelease(image), "6.1.192-antidote");
    assert.throws(() => bzImageRelease(Buffer.alloc(0x1000)), /not a bzImage/);
  });
});

describe("GRUB BIOS boot code", () => {
  it("writes boot.img into the MBR keeping the partition table, pointing at core.img, and core.img's blocklist", () => {
    const dir = tempDir("grub-unit");
    const disk = path.join(dir, "disk.raw");
    const mbr = Buffer.alloc(512);
    mbr.fill(0xab, 0x1b8, 0x1fe); // a partition table to keep
    fs.writeFileSync(disk, Buffer.concat([mbr, Buffer.alloc(4 * MIB)]));
    const boot = Buffer.alloc(512, 0x11);
    const core = Buffer.alloc(3 * 512, 0x22);
    core.writeUInt16LE(2, 512 - 4); // grub-mkimage's count of sectors after the first
    installBiosBootCode(disk, boot, core, 2048);
    const out = fs.readFileSync(disk);
    assert.ok(
      out.subarray(0x1b8, 0x1fe).every((b) => b === 0xab),
      "partition table kept",
    );
    assert.strictEqual(out.readBigUInt64LE(0x5c), 2048n);
    assert.deepStrictEqual([out[0x66], out[0x67]], [0x90, 0x90]);
    assert.strictEqual(out.readBigUInt64LE(2048 * 512 + 512 - 12), 2049n);
    assert.strictEqual(out[2048 * 512 + 513], 0x22);
    core.writeUInt16LE(7, 512 - 4);
    assert.throws(() => installBiosBootCode(disk, boot, core, 2048), /not a core.img/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("disk import arguments", () => {
  const sha = "0".repeat(64);
  it("accepts a path or an http(s) URL, a sha256 and a known format", () => {
    assert.deepStrictEqual(
      diskImportStep.parseArgs({ source: "vendor/a.vmdk", sha256: sha, format: "vmdk", provision: null }),
      {
        source: "vendor/a.vmdk",
        sha256: sha,
        format: "vmdk",
        provision: null,
      },
    );
    diskImportStep.parseArgs({
      source: "https://example.invalid/a.img",
      sha256: sha,
      format: "raw",
      provision: null,
    });
  });

  it("refuses other URL schemes, a malformed checksum and an unknown format, naming the field", () => {
    assert.throws(
      () => diskImportStep.parseArgs({ source: "ftp://x/a", sha256: sha, format: "raw" }),
      /^Error: source: /,
    );
    assert.throws(
      () => diskImportStep.parseArgs({ source: "a", sha256: "ABC", format: "raw" }),
      /^Error: sha256: expected 64 lowercase hex digits/,
    );
    assert.throws(
      () => diskImportStep.parseArgs({ source: "a", sha256: sha, format: "iso" }),
      /^Error: format: expected one of qcow2, raw, vmdk, vdi/,
    );
  });
});

describe("Qcow2Disk component (Pulumi mocks)", () => {
  let dir: string;
  beforeEach(async () => {
    await useMocks();
    dir = tempDir("qcow2-component");
    fs.writeFileSync(path.join(dir, "r.txt"), "rootfs\n");
    fs.writeFileSync(path.join(dir, "k.txt"), "kernel\n");
  });

  const parents = (tag: string) => ({
    rootfs: new Template(`rootfs${tag}`, { template: path.join(dir, "r.txt") }),
    kernel: new Template(`kernel${tag}`, { template: path.join(dir, "k.txt") }),
  });

  it("carries its parents' keys and normalized arguments in the spec", async () => {
    const p = parents("1");
    const disk = new Qcow2Disk("disk1", { ...p, size: "1GiB", kernelCmdline: ["quiet"] });
    const spec = JSON.parse((await valueOf(disk.command.stdin)) as string) as StepSpec;
    assert.strictEqual(spec.kind, "disk");
    assert.deepStrictEqual(spec.parents, { rootfs: p.rootfs.key, kernel: p.kernel.key });
    assert.deepStrictEqual(spec.args, {
      sizeBytes: 1024 * MIB,
      kernelCmdline: ["quiet"],
      uefi: true,
      grubTimeoutSeconds: 0,
    });
  });

  it("changes its key with the size, a kernel parameter or a parent, and not otherwise", () => {
    const p = parents("2");
    const base = new Qcow2Disk("d-base", { ...p }).key;
    assert.strictEqual(new Qcow2Disk("d-same", { ...p, size: "2GiB" }).key, base);
    assert.notStrictEqual(new Qcow2Disk("d-size", { ...p, size: "3GiB" }).key, base);
    assert.notStrictEqual(new Qcow2Disk("d-cmd", { ...p, kernelCmdline: ["quiet"] }).key, base);
    fs.writeFileSync(path.join(dir, "k.txt"), "another kernel\n");
    assert.notStrictEqual(new Qcow2Disk("d-kernel", { ...parents("3") }).key, base);
  });

  it("rejects a bad kernel parameter while the program runs", () => {
    assert.throws(
      () => new Qcow2Disk("bad", { ...parents("4"), kernelCmdline: ["init=/bin/sh; reboot"], image: "img" }),
      /^Error: img: bad: bad argument kernelCmdline\[0\]/,
    );
  });

  it("imports a vendor image by path relative to the project, keyed by its declared checksum", async () => {
    const sha = "1".repeat(64);
    const disk = Qcow2Disk.import("vendor", {
      source: path.join(dir, "a.vmdk"),
      sha256: sha,
      format: "vmdk",
    });
    const spec = JSON.parse((await valueOf(disk.command.stdin)) as string) as StepSpec;
    assert.strictEqual(spec.kind, "disk-import");
    const args = spec.args as { source: string; sha256: string };
    assert.ok(!path.isAbsolute(args.source));
    assert.strictEqual(path.resolve(args.source), path.join(dir, "a.vmdk"));
    assert.notStrictEqual(
      Qcow2Disk.import("vendor2", {
        source: path.join(dir, "a.vmdk"),
        sha256: "2".repeat(64),
        format: "vmdk",
      }).key,
      disk.key,
    );
  });

  it("provisions an imported disk: the password only as its hash, files keyed by contents, mistakes named", async () => {
    const motd = path.join(dir, "motd");
    fs.writeFileSync(motd, "lab\n");
    const vendor = { source: path.join(dir, "a.qcow2"), sha256: "3".repeat(64), format: "qcow2" as const };
    const provisioned = (name: string, provision: object = {}) =>
      Qcow2Disk.import(name, {
        ...vendor,
        image: "vendor",
        provision: {
          user: "netops",
          password: "s3cret-Pa55",
          files: [{ source: motd, path: "/etc/motd" }],
          ...provision,
        },
      });
    const disk = provisioned("p1");
    const spec = JSON.parse((await valueOf(disk.command.stdin)) as string) as StepSpec;
    assert.ok(!JSON.stringify(spec).includes("s3cret-Pa55"), "no plaintext password in the spec");
    assert.deepStrictEqual((spec.args as { provision: object }).provision, {
      user: {
        name: "netops",
        passwordHash: imagePasswordHash("s3cret-Pa55", "vendor", "netops"),
        sudo: true,
      },
      sshPasswordLogin: true,
      files: [{ role: "provision/file/0", path: "/etc/motd", mode: "0644" }],
      firstBoot: null,
    });
    assert.strictEqual(path.resolve(spec.files["provision/file/0"]), motd);
    assert.strictEqual(
      (Qcow2Disk.import("p0", vendor).spec.args as { provision: unknown }).provision,
      null,
      "null without provisioning",
    );

    assert.strictEqual(provisioned("p2").key, disk.key);
    fs.appendFileSync(motd, "more\n");
    assert.notStrictEqual(provisioned("p3").key, disk.key, "a file's contents are key input");
    assert.notStrictEqual(provisioned("p4", { firstBoot: "touch /x" }).key, provisioned("p5").key);

    assert.throws(
      () => provisioned("p6", { password: undefined }),
      /^Error: vendor: p6: bad argument provision.password: expected the login user's password \(with user\)/,
    );
    assert.throws(
      () => provisioned("p7", { files: [{ source: path.join(dir, "nope"), path: "/etc/x" }] }),
      /^Error: vendor: p7: bad argument provision.files\[0\].source: expected an existing file/,
    );
    assert.throws(
      () => provisioned("p8", { files: [{ source: motd, path: "etc/x" }] }),
      /^Error: vendor: p8: bad argument provision.files\[0\].path: expected an absolute file path/,
    );
    assert.throws(
      () => provisioned("p9", { user: "Net Ops" }),
      /^Error: vendor: p9: bad argument provision.user.name: expected a user name/,
    );
  });

  it("writes a provisioning script that sets the hash, sudo and sshd's password login first", () => {
    const script = provisioningScript({
      user: { name: "netops", passwordHash: "$6$salt$hash", sudo: true },
      sshPasswordLogin: true,
      files: [],
      firstBoot: null,
    });
    assert.match(script, /^usermod --password '\$6\$salt\$hash' netops$/m);
    assert.match(script, /NOPASSWD: ALL' >\/etc\/sudoers.d\/90-antidote-netops$/m);
    assert.match(script, /-e '1i PasswordAuthentication yes'/);
    // virt-customize's machine id would be every VM's: emptied, as finalize.sh leaves our own images.
    assert.match(script, /^: >\/etc\/machine-id$/m);
    const dirOf = tempDir("provision-script");
    fs.writeFileSync(path.join(dirOf, "p.sh"), script);
    execFileSync("sh", ["-n", path.join(dirOf, "p.sh")]);
  });
});
