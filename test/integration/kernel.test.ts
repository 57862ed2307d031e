import * as assert from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { DEFAULT_KERNEL_FRAGMENTS, KernelArgs, kernelStepInputs } from "../../lib/components/kernel";
import { stepKey } from "../../lib/keys";
import { kernelStep } from "../../lib/steps/kernel";
import { runStep, StepFailure } from "../../lib/steps/run";
import { StepResult, StepSpec } from "../../lib/steps/step";
import { PROJECT_ROOT, sharedTestStore, tempDir } from "../helpers";

/** The spec a `Kernel` component with these arguments would hand the step command. */
function kernelSpec(name: string, args: KernelArgs = {}): StepSpec {
  const inputs = kernelStepInputs(name, args);
  const key = stepKey({ kind: kernelStep.kind, version: kernelStep.version, parents: {}, ...inputs });
  return { kind: kernelStep.kind, name, image: args.image ?? name, parents: {}, key, ...inputs };
}

const definitions = { kernel: kernelStep };

describe("kernel step (real build)", () => {
  // The shared store keeps the kernel for the disk and boot tests, and for the next run of this one.
  const store = sharedTestStore();
  let kernel: StepResult;

  before(async () => {
    kernel = await runStep(kernelSpec("test-kernel"), { store, definitions, root: PROJECT_ROOT });
  });

  it("builds vmlinuz, config, System.map and the linux-image package, with every requested option set", () => {
    const files = fs.readdirSync(kernel.location);
    for (const file of ["vmlinuz", "config", "System.map", kernel.outputs.deb as string]) {
      assert.ok(files.includes(file), `${file} in ${files.join(", ")}`);
    }
    assert.match(kernel.outputs.deb as string, /^linux-image-6\.1\.\d+-antidote_.*_amd64\.deb$/);
    assert.ok((kernel.outputs.configOptionsChecked as number) > 100, "the fragments' options were checked");
    const config = fs.readFileSync(path.join(kernel.location, "config"), "utf8");
    for (const option of [
      "CONFIG_VIRTIO_BLK=y",
      "CONFIG_VIRTIO_MMIO=y",
      "CONFIG_EXT4_FS=y",
      "CONFIG_NET_ACT_MIRRED=y",
    ]) {
      assert.ok(config.includes(`\n${option}\n`), option);
    }
    assert.ok(kernel.size <= 8 * 1024 * 1024, `bzImage is ${kernel.size} bytes, over 8 MiB`);
  });

  it("boots under QEMU (TCG) with virtio disk and NIC, and prints its release on the serial console", async () => {
    const dir = tempDir("kernel-boot");
    const initrd = tinyInitramfs(dir);
    const disk = path.join(dir, "disk.raw");
    fs.writeFileSync(disk, Buffer.alloc(1024 * 1024));
    const console = await runQemu(
      [
        "-machine",
        "q35,accel=tcg",
        "-m",
        "256",
        "-nographic",
        "-no-reboot",
        "-kernel",
        kernel.primary,
        "-initrd",
        initrd,
        "-append",
        "console=ttyS0 panic=-1 rdinit=/init",
        "-drive",
        `file=${disk},if=virtio,format=raw`,
        "-nic",
        "user,model=virtio-net-pci,restrict=on",
      ],
      120_000,
    );
    assert.match(
      console,
      new RegExp(`antidote-boot: release=${escapeRegExp(kernel.outputs.release as string)}\\b`),
      console,
    );
    assert.match(console, /antidote-boot: block=.*\bvda\b/, "virtio-blk disk visible");
    assert.match(console, /antidote-boot: net=.*\beth0\b/, "virtio-net NIC visible");
  });

  it("builds once for two components with the same arguments", async () => {
    const second = await runStep(kernelSpec("other-image-kernel", { image: "other-image" }), {
      store,
      definitions,
      root: PROJECT_ROOT,
    });
    assert.strictEqual(second.key, kernel.key);
    assert.strictEqual(second.cached, true);
  });
});

// Separate from the build above: the config check runs before any compile, so this needs no kernel.
describe("kernel step config check (real Kconfig)", () => {
  const store = sharedTestStore();

  it("fails before compiling when a fragment misspells an option, naming it, its fragment and a likely fix", async () => {
    const dir = tempDir("kernel-typo");
    const typo = path.join(dir, "typo.config");
    fs.writeFileSync(typo, "# Lesson extras\nCONFIG_VIRTIO_BLKK=y\nCONFIG_BPF_JIT=y\n");
    const spec = kernelSpec("typo-kernel", { fragments: [...DEFAULT_KERNEL_FRAGMENTS, typo] });
    const started = Date.now();
    await assert.rejects(runStep(spec, { store, definitions, root: PROJECT_ROOT }), (err: Error) => {
      assert.ok(err instanceof StepFailure, String(err));
      // What the user is shown: the cause, then the excerpt, one line per option.
      const shown = [err.message, ...err.excerpt].join("\n");
      assert.match(err.message, /kernel options CONFIG_VIRTIO_BLKK, CONFIG_BPF_JIT did not get their values/);
      assert.match(shown, /CONFIG_VIRTIO_BLKK \(typo\.config:2\): requested y, got n: unknown symbol/);
      assert.match(shown, /did you mean CONFIG_VIRTIO_BLK\?/);
      assert.match(
        shown,
        /CONFIG_BPF_JIT \(typo\.config:3\): requested y, got n: unmet dependency: .*MODULES=n/,
      );
      return true;
    });
    assert.ok(Date.now() - started < 5 * 60_000, "failed in the config phase, not after a compile");
  });
});

/** An initramfs holding busybox and an init that prints what the test checks, then powers the VM off. */
function tinyInitramfs(dir: string): string {
  const root = path.join(dir, "initramfs");
  fs.mkdirSync(path.join(root, "bin"), { recursive: true });
  fs.copyFileSync("/bin/busybox", path.join(root, "bin", "busybox"));
  fs.chmodSync(path.join(root, "bin", "busybox"), 0o755);
  fs.writeFileSync(
    path.join(root, "init"),
    `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo "antidote-boot: release=$(/bin/busybox uname -r)"
echo "antidote-boot: block=$(/bin/busybox ls /sys/block | /bin/busybox tr '\\n' ' ')"
echo "antidote-boot: net=$(/bin/busybox ls /sys/class/net | /bin/busybox tr '\\n' ' ')"
/bin/busybox poweroff -f
`,
    { mode: 0o755 },
  );
  const initrd = path.join(dir, "initramfs.cpio.gz");
  execFileSync("sh", ["-c", `cd "$0" && find . | cpio -o -H newc --quiet | gzip -n > "$1"`, root, initrd]);
  return initrd;
}

/**
 * Runs QEMU in its own process group with stdin closed and output piped (never the test runner's), and kills the
 * whole group when it exits, fails or runs past `timeoutMs`. Resolves with the serial console output.
 */
function runQemu(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    qemu.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    qemu.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    const kill = () => {
      try {
        if (qemu.pid) process.kill(-qemu.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`QEMU did not power off within ${timeoutMs} ms; console:\n${output}`));
    }, timeoutMs);
    qemu.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    qemu.on("close", () => {
      clearTimeout(timer);
      kill();
      resolve(output);
    });
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
