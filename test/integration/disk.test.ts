import * as assert from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { sha256File } from "../../lib/keys";
import { LocalStore } from "../../lib/store/local";
import { runStep, StepFailure } from "../../lib/steps/run";
import { StepResult } from "../../lib/steps/step";
import { MIB } from "../../lib/vm/layout";
import { OVMF_CODE, OVMF_VARS } from "../../lib/vm/qemu";
import { BaseDisk, debianBaseDisk, definitions, diskSpec, spec } from "../fixtures/disk";
import { PROJECT_ROOT, sharedTestStore, tempDir } from "../helpers";

const run = (
  s: ReturnType<typeof spec>,
  store: LocalStore,
  extra: { signal?: AbortSignal; progress?: (l: string) => void } = {},
) => runStep(s, { store, definitions, root: PROJECT_ROOT, progress: () => {}, ...extra });

/**
 * Boots a disk image with plain QEMU — no -kernel: firmware, GRUB, kernel, systemd — on a snapshot (the image is not
 * written), until the serial console shows `pattern` or the deadline passes. Returns the console text.
 */
async function bootToConsole(disk: string, pattern: RegExp, firmware: "bios" | "uefi", timeoutMs = 180_000) {
  const dir = tempDir("disk-boot");
  const consoleLog = path.join(dir, "console.log");
  const args = [
    "-nodefaults",
    "-accel",
    "tcg,thread=multi",
    "-m",
    "1024",
    "-smp",
    "2",
    "-display",
    "none",
    "-no-reboot",
    "-serial",
    `file:${consoleLog}`,
    "-drive",
    `file=${disk},if=virtio,format=qcow2,snapshot=on`,
  ];
  if (firmware === "uefi") {
    fs.copyFileSync(OVMF_VARS, path.join(dir, "vars.fd"));
    args.push("-drive", `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`);
    args.push("-drive", `if=pflash,format=raw,file=${path.join(dir, "vars.fd")}`);
  }
  const qemu = spawn("qemu-system-x86_64", args, { detached: true, stdio: "ignore" });
  const started = Date.now();
  try {
    for (;;) {
      const text = fs.existsSync(consoleLog) ? fs.readFileSync(consoleLog, "utf8") : "";
      if (pattern.test(text)) return { console: text, ms: Date.now() - started };
      if (qemu.exitCode !== null || Date.now() - started > timeoutMs) {
        throw new Error(
          `no ${pattern} on the console within ${timeoutMs} ms; console:\n${text.slice(-3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    process.kill(-qemu.pid!, "SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads a file of the disk's root filesystem without mounting: qcow2 → sparse raw, then debugfs at its offset. */
function readFromRoot(built: StepResult, files: string[]): Record<string, string> {
  const dir = tempDir("disk-read");
  try {
    const raw = path.join(dir, "disk.raw");
    execFileSync("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", built.primary, raw]);
    const root = (built.outputs.partitions as { name: string; start: number }[]).find(
      (p) => p.name === "root",
    )!;
    const image = `${raw}?offset=${root.start * 512}`;
    return Object.fromEntries(
      files.map((f) => [
        f,
        execFileSync("debugfs", ["-R", `cat ${f}`, image], { encoding: "utf8", stdio: "pipe" }),
      ]),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function attachedAndMounted(): string {
  return execFileSync("losetup", ["-a"], { encoding: "utf8" }) + fs.readFileSync("/proc/mounts", "utf8");
}

describe("disk step (real rootfs and kernel)", () => {
  const store = sharedTestStore();
  let base: BaseDisk;

  before(async () => {
    base = await debianBaseDisk(store);
  });

  it("makes a zstd-compressed, sparse qcow2 of the requested virtual size, under 150 MB", () => {
    const info = JSON.parse(
      execFileSync("qemu-img", ["info", "--output=json", base.disk.primary], { encoding: "utf8" }),
    );
    assert.strictEqual(info.format, "qcow2");
    assert.strictEqual(info["virtual-size"], 2048 * MIB);
    assert.strictEqual(info["format-specific"].data["compression-type"], "zstd");
    const onDisk = base.disk.outputs.sizeOnDisk as number;
    assert.ok(onDisk < 150e6, `${onDisk} bytes on disk`);
    assert.strictEqual(base.disk.outputs.virtualSize, 2048 * MIB);
  });

  it("records the layout, the kernel release, the root partition and the command line it boots with", () => {
    const out = base.disk.outputs;
    assert.deepStrictEqual(
      (out.partitions as { name: string; number: number }[]).map((p) => `${p.number}:${p.name}`),
      ["14:bios", "15:esp", "1:root"],
    );
    assert.strictEqual(out.kernelRelease, base.kernel.outputs.release);
    assert.match(out.kernelCmdline as string, /^root=PARTUUID=[0-9a-f-]{36} ro .*console=ttyS0,115200/);
    assert.ok((out.kernelCmdline as string).includes((out.rootPartitionUuid as string).toLowerCase()));
    assert.strictEqual(out.sha256, base.disk.sha256);
  });

  it("installs the kernel package into the tree and GRUB's config beside it", () => {
    const release = base.disk.outputs.kernelRelease as string;
    const files = readFromRoot(base.disk, ["/var/lib/dpkg/status", "/boot/grub/grub.cfg", "/etc/fstab"]);
    assert.match(
      files["/var/lib/dpkg/status"],
      new RegExp(`Package: linux-image-${release}\\nStatus: install ok installed`),
    );
    assert.ok(
      files["/boot/grub/grub.cfg"].includes(
        `linux /boot/vmlinuz-${release} ${base.disk.outputs.kernelCmdline}`,
      ),
    );
    assert.match(files["/etc/fstab"], /^LABEL=antidote-root\s+\/\s+ext4/m);
  });

  it("boots under plain QEMU without -kernel (BIOS → GRUB → kernel → systemd) to a login prompt", async () => {
    const { console } = await bootToConsole(base.disk.primary, /debian-base login:/, "bios");
    assert.ok(console.includes(`Linux version ${base.disk.outputs.kernelRelease}`));
    assert.ok(console.includes(`Command line: BOOT_IMAGE=/boot/vmlinuz-`));
  });

  it("boots through UEFI firmware (OVMF) too", async () => {
    await bootToConsole(base.disk.primary, /debian-base login:/, "uefi");
  });

  it("is reproducible: a second build of the same inputs is byte-identical, whatever image it is built for", async () => {
    const other = new LocalStore(tempDir("disk-repro"));
    for (const parent of [base.rootfs, base.kernel]) {
      fs.cpSync(parent.location, path.join(other.location, "artifacts", parent.key), { recursive: true });
    }
    // Another image's disk of the same inputs has the same key (the image is not in it), so the same bytes.
    const again = await run(
      diskSpec("another-image", {}, { rootfs: base.rootfs.key, kernel: base.kernel.key }),
      other,
    );
    assert.strictEqual(again.key, base.disk.key);
    assert.strictEqual(again.cached, false);
    assert.strictEqual(again.sha256, base.disk.sha256);
    fs.rmSync(other.location, { recursive: true, force: true });
  });

  describe("failures", () => {
    const parents = () => ({ rootfs: base.rootfs.key, kernel: base.kernel.key });
    const leftovers = () => fs.readdirSync(path.join(store.location, "tmp"));

    it("stopped while writing the filesystem (SIGTERM): no artifact, no temp files, nothing attached or mounted", async () => {
      const before = { attached: attachedAndMounted(), tmp: leftovers() };
      const workDirs = () => leftovers().filter((d) => d.startsWith("antidote-disk-"));
      const workBefore = workDirs();
      const s = diskSpec("interrupted", { size: "3GiB" }, parents());
      const controller = new AbortController();
      await assert.rejects(
        run(s, store, {
          signal: controller.signal,
          progress: (line) => line.includes("writing the root filesystem") && controller.abort(),
        }),
        (err: StepFailure) => /was interrupted/.test(err.message),
      );
      assert.strictEqual(await store.has(s.key), false);
      assert.deepStrictEqual(leftovers(), before.tmp);
      assert.deepStrictEqual(
        workDirs().filter((d) => !workBefore.includes(d)),
        [],
      );
      assert.strictEqual(attachedAndMounted(), before.attached);
    });

    it("fails early, with sizes, when the tree does not fit the disk, leaving nothing has() accepts", async () => {
      const s = diskSpec("too-small", { size: "128MiB" }, parents());
      await assert.rejects(run(s, store), (err: StepFailure) => {
        assert.match(err.message, /the root filesystem needs \d+ MiB but a 128 MiB disk leaves \d+ MiB/);
        return true;
      });
      assert.strictEqual(await store.has(s.key), false);
    });
  });
});

describe("disk import", () => {
  const store = new LocalStore(tempDir("import-store"));
  const dir = tempDir("import");
  const vmdk = path.join(dir, "vendor.vmdk");
  let digest: string;

  before(async () => {
    const raw = path.join(dir, "vendor.raw");
    const content = Buffer.alloc(16 * MIB);
    for (let i = 0; i < content.length; i += 4096) content.write(`block ${i / 4096}`, i);
    fs.writeFileSync(raw, content);
    execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", raw, vmdk]);
    digest = await sha256File(vmdk);
  });

  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(store.location, { recursive: true, force: true });
  });

  it("converts a vmdk to a compressed qcow2 with the same contents and records its provenance", async () => {
    const result = await run(
      spec("disk-import", "vendor", { source: vmdk, sha256: digest, format: "vmdk", provision: null }),
      store,
    );
    execFileSync("qemu-img", ["compare", "-f", "vmdk", "-F", "qcow2", vmdk, result.primary]);
    const info = JSON.parse(
      execFileSync("qemu-img", ["info", "--output=json", result.primary], { encoding: "utf8" }),
    );
    assert.strictEqual(info["format-specific"].data["compression-type"], "zstd");
    assert.deepStrictEqual(result.outputs.provenance, {
      source: vmdk,
      sha256: digest,
      format: "vmdk",
      sourceBytes: fs.statSync(vmdk).size,
    });
    assert.strictEqual(result.outputs.virtualSize, 16 * MIB);
    // The vendor's file itself is kept, for the stack's bucket to archive.
    assert.strictEqual(result.outputs.original, "original.vmdk");
    assert.ok(fs.readFileSync(path.join(result.location, "original.vmdk")).equals(fs.readFileSync(vmdk)));
  });

  it("fetches an http URL (here from loopback) and checks it the same way", async () => {
    const server = http.createServer((_, res) => fs.createReadStream(vmdk).pipe(res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/vendor.vmdk`;
    try {
      const result = await run(
        spec("disk-import", "vendor-url", { source: url, sha256: digest, format: "vmdk", provision: null }),
        store,
      );
      execFileSync("qemu-img", ["compare", "-f", "vmdk", "-F", "qcow2", vmdk, result.primary]);
      assert.ok(fs.readFileSync(path.join(result.location, "original.vmdk")).equals(fs.readFileSync(vmdk)));
    } finally {
      server.close();
    }
  });

  it("rejects a wrong checksum, naming both sums, and stores nothing", async () => {
    const wrong = "0".repeat(64);
    const s = spec("disk-import", "vendor-bad", {
      source: vmdk,
      sha256: wrong,
      format: "vmdk",
      provision: null,
    });
    await assert.rejects(run(s, store), (err: StepFailure) => {
      assert.ok(err.message.includes(`expected sha256 ${wrong}`), err.message);
      assert.ok(err.message.includes(`the file has ${digest}`), err.message);
      return true;
    });
    assert.strictEqual(await store.has(s.key), false);
  });
});
