/**
 * Disk build benchmark: builds debian-base's disk (minbase + systemd + openssh, the project kernel) cold three times,
 * each into a fresh store holding only its rootfs and kernel, and prints the wall time of each phase, the total, the
 * qcow2's size on disk and the size of the tree it holds. No assertions: figures only.
 *
 *   npx ts-node bench/disk.ts
 *
 * The rootfs and kernel come from the shared test store (built there first if missing, which takes long).
 */
import * as fs from "fs";
import * as path from "path";
import { LocalStore } from "../lib/store/local";
import { runStep } from "../lib/steps/run";
import { debianBase } from "../test/fixtures/rootfs";
import { definitions, diskSpec, testKernel } from "../test/fixtures/disk";
import { sharedTestStore, tempDir } from "../test/helpers";
import { interrupted } from "./interrupt";

const RUNS = 3;

async function main() {
  const shared = sharedTestStore();
  const [rootfs, kernel] = await Promise.all([debianBase(shared), testKernel(shared)]);
  console.log(`rootfs ${rootfs.key.slice(0, 12)}: ${(rootfs.size / 1e6).toFixed(1)} MB tar.zst`);
  console.log(`kernel ${kernel.key.slice(0, 12)}: ${kernel.outputs.release}`);
  const totals: number[] = [];
  for (let i = 1; i <= RUNS; i++) {
    const store = new LocalStore(tempDir("bench-disk"));
    for (const parent of [rootfs, kernel]) {
      fs.cpSync(parent.location, path.join(store.location, "artifacts", parent.key), { recursive: true });
    }
    const phases: string[] = [];
    const started = Date.now();
    const disk = await runStep(diskSpec("debian-base", {}, { rootfs: rootfs.key, kernel: kernel.key }), {
      store,
      definitions,
      signal: interrupted,
      progress: (line) => phases.push(line.replace(/^debian-base: (disk: )?/, "")),
    });
    const seconds = (Date.now() - started) / 1000;
    totals.push(seconds);
    console.log(`\nrun ${i}: ${seconds.toFixed(1)} s`);
    for (const line of phases) console.log(`  ${line}`);
    console.log(
      `  qcow2: ${((disk.outputs.sizeOnDisk as number) / 1e6).toFixed(1)} MB on disk ` +
        `(${((disk.outputs.sizeOnDisk as number) / 1048576).toFixed(1)} MiB), ` +
        `virtual ${(disk.outputs.virtualSize as number) / 1073741824} GiB, sha256 ${disk.sha256.slice(0, 12)}`,
    );
    fs.rmSync(store.location, { recursive: true, force: true });
  }
  totals.sort((a, b) => a - b);
  console.log(
    `\ndisk build: median ${totals[Math.floor(RUNS / 2)].toFixed(1)} s over ${RUNS} cold runs (target ≤ 30 s)`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
