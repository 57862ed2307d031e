/**
 * Container benchmark: the time to build debian-base's lab image (docker build of the disk layer on the launcher),
 * the time to import the launcher base again (what a machine whose dockerd lost it pays), and the sizes: launcher
 * base (target ≤ 250 MB) and the lab image's own layer against its qcow2. No assertions: figures only.
 *
 *   npx ts-node bench/container.ts
 *
 * Parents (rootfs, kernel, disk, boot test, launcher rootfs) come from the shared test store, built there if missing;
 * the timed steps run in a throwaway store holding links to them.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadMetadata } from "../lib/metadata/metadata";
import { ContainerRecord } from "../lib/steps/container";
import { LauncherRecord } from "../lib/steps/launcher";
import { StepLog } from "../lib/steps/log";
import { runStep } from "../lib/steps/run";
import { LocalStore } from "../lib/store/local";
import { buildContainer, containerSpec, testLauncher } from "../test/fixtures/container";
import { bootTestSpec, debianBaseDisk, definitions } from "../test/fixtures/disk";
import { PROJECT_ROOT, sharedTestStore } from "../test/helpers";
import { ensureLauncherImage } from "../lib/steps/launcher";
import { interrupted } from "./interrupt";

const MB = 1e6;

/** Bytes of each layer an image adds, newest first, as `docker history` reports them. */
function layerSizes(ref: string): number[] {
  return execFileSync("docker", ["history", "--no-trunc", "--format", "{{.Size}}", "--human=false", ref], {
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .map(Number)
    .filter((n) => n > 0);
}

async function main() {
  const shared = sharedTestStore();
  console.log(`container bench on ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}`);
  const { disk } = await debianBaseDisk(shared);
  const bootTest = await runStep(bootTestSpec("debian-base", disk.key), {
    store: shared,
    definitions,
    root: PROJECT_ROOT,
    signal: interrupted,
    progress: () => {},
  });
  const launcher = await testLauncher(shared);

  const root = fs.mkdtempSync(path.join(os.tmpdir(), "antidote-bench-container-"));
  const store = new LocalStore(root);
  try {
    const rootfsKey = (await shared.get(launcher.key))!.meta.inputs.parents.rootfs;
    for (const key of [disk.key, bootTest.key, launcher.key, rootfsKey]) {
      execFileSync("cp", [
        "-al",
        path.join(shared.location, "artifacts", key),
        path.join(root, "artifacts", key),
      ]);
    }
    const metadata = loadMetadata(path.join(PROJECT_ROOT, "images", "debian-base"));
    // A spec nobody built yet in this store, so the docker build really runs.
    const spec = containerSpec("bench-container", "bench-debian-base", metadata, {
      disk: disk.key,
      launcher: launcher.key,
      bootTest: bootTest.key,
    });
    let started = Date.now();
    const built = await buildContainer(store, spec);
    const buildSeconds = (Date.now() - started) / 1000;
    const record = built.outputs as unknown as ContainerRecord;

    const base = launcher.outputs as unknown as LauncherRecord;
    execFileSync("docker", ["image", "rm", base.ref], { stdio: "ignore" });
    started = Date.now();
    const log = new StepLog(path.join(root, "reimport.log"), interrupted, () => {});
    await ensureLauncherImage((await store.get(launcher.key))!, shared, log);
    const reimportSeconds = (Date.now() - started) / 1000;

    const own = layerSizes(record.ref)[0];
    const qcow2 = fs.statSync(disk.primary).size;
    console.log(`lab image build (docker build, disk layer):  ${buildSeconds.toFixed(1)} s`);
    console.log(`launcher import again (zstd -d, docker import): ${reimportSeconds.toFixed(1)} s`);
    console.log(`launcher base:       ${(base.size / MB).toFixed(1)} MB (target ≤ 250 MB), one layer`);
    console.log(`lab image:           ${(record.size / MB).toFixed(1)} MB`);
    console.log(`its own layer:       ${(own / MB).toFixed(1)} MB; its qcow2: ${(qcow2 / MB).toFixed(1)} MB`);
    execFileSync("docker", ["image", "rm", record.ref], { stdio: "ignore" });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
