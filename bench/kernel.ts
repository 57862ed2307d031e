/**
 * Kernel build benchmark: a cold build (empty store, empty ccache, no kept build tree), then a rebuild after a
 * one-line fragment change (the kept tree and ccache the cold build left), then the cold build's key again in that
 * tree, to compare its bytes with the clean build's. Prints wall time, the CPU time the build's processes used (what
 * the build costs whatever else the machine runs), the bzImage size and ccache's hit rate. No assertions.
 *
 *   npx ts-node bench/kernel.ts [--keep]      (--keep leaves the store in place and prints where it is)
 *   npx ts-node bench/kernel.ts --store DIR   (an existing store: its kept tree and ccache serve the first build too)
 */
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DEFAULT_KERNEL_FRAGMENTS, kernelStepInputs } from "../lib/components/kernel";
import { stepKey } from "../lib/keys";
import { LocalStore } from "../lib/store/local";
import { CCACHE_CACHE, kernelStep } from "../lib/steps/kernel";
import { runStep } from "../lib/steps/run";
import { StepResult } from "../lib/steps/step";
import { interrupted } from "./interrupt";

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** CPU seconds used by this process's waited-for children and their descendants (cutime + cstime). */
function childCpuSeconds(): number {
  // Fields after "pid (comm) ": cutime and cstime are the 14th and 15th.
  const fields = fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

async function build(store: LocalStore, name: string, fragments: string[]) {
  const inputs = kernelStepInputs(name, { fragments });
  const key = stepKey({ kind: kernelStep.kind, version: kernelStep.version, parents: {}, ...inputs });
  const cpuBefore = childCpuSeconds();
  const started = Date.now();
  const result: StepResult = await runStep(
    { kind: kernelStep.kind, name, image: "bench", parents: {}, key, ...inputs },
    {
      store,
      definitions: { kernel: kernelStep },
      root: path.resolve(__dirname, ".."),
      progress: () => {},
      signal: interrupted,
    },
  );
  const cpuAfter = childCpuSeconds();
  return { result, wallSeconds: (Date.now() - started) / 1000, cpuSeconds: cpuAfter - cpuBefore };
}

function ccacheStats(store: LocalStore): string {
  const stats = execFileSync("ccache", ["--print-stats"], {
    encoding: "utf8",
    env: { ...process.env, CCACHE_DIR: store.cacheDir(CCACHE_CACHE) },
  });
  const value = (name: string) => Number(new RegExp(`^${name}\\t(\\d+)$`, "m").exec(stats)?.[1] ?? 0);
  const hits = value("direct_cache_hit") + value("preprocessed_cache_hit");
  const misses = value("cache_miss");
  return `${hits} hits, ${misses} misses`;
}

function debSha256(result: StepResult): string {
  const deb = fs.readFileSync(path.join(result.location, String(result.outputs.deb)));
  return createHash("sha256").update(deb).digest("hex");
}

const same = (a: string, b: string) => (a === b ? "identical to" : "DIFFERENT from");

async function main() {
  // --store DIR: an existing store (its kept tree and ccache), e.g. the one `up` filled: no cold build.
  const given = process.argv.indexOf("--store");
  const keep = process.argv.includes("--keep") || given > 0;
  const root =
    given > 0
      ? path.resolve(process.argv[given + 1])
      : fs.mkdtempSync(path.join(os.tmpdir(), "antidote-bench-kernel-"));
  const store = new LocalStore(root);
  const fragmentDir = fs.mkdtempSync(path.join(os.tmpdir(), "antidote-bench-fragments-"));
  const fragments = DEFAULT_KERNEL_FRAGMENTS.map((f) => {
    const copy = path.join(fragmentDir, path.basename(f));
    fs.copyFileSync(f, copy);
    return copy;
  });
  console.log(
    `kernel bench on ${os.cpus().length} CPUs (${os.cpus()[0].model}), load ${os.loadavg()[0].toFixed(1)}`,
  );
  try {
    const cold = await build(store, "bench-cold", fragments);
    const first = cold.result.cached
      ? "first build (already in the store, not timed)"
      : given > 0
        ? "first build (with the given store's kept tree and ccache)"
        : "cold build";
    console.log(
      `${first}: ` +
        `${cold.wallSeconds.toFixed(0)} s wall, ${cold.cpuSeconds.toFixed(0)} s CPU, ` +
        `bzImage ${(cold.result.size / 1048576).toFixed(2)} MiB (${cold.result.outputs.release})`,
    );
    // Same inputs as any other build of the standard kernel: compare with another store's artifact to check
    // that the build is reproducible.
    const coldDeb = debSha256(cold.result);
    console.log(
      `cold build key ${cold.result.key}, vmlinuz sha256 ${cold.result.sha256}, .deb sha256 ${coldDeb}`,
    );
    execFileSync("ccache", ["--zero-stats"], {
      env: { ...process.env, CCACHE_DIR: store.cacheDir(CCACHE_CACHE) },
    });

    // The one-line change: a qdisc a lesson might want.
    const networkFragment = path.join(fragmentDir, "network.config");
    const original = fs.readFileSync(networkFragment);
    fs.appendFileSync(networkFragment, "CONFIG_NET_SCH_SFQ=y\n");
    const warm = await build(store, "bench-warm", fragments);
    console.log(
      `warm build after a one-line fragment change: ${warm.wallSeconds.toFixed(0)} s wall, ` +
        `${warm.cpuSeconds.toFixed(0)} s CPU, ccache ${ccacheStats(store)}, ` +
        `bzImage ${(warm.result.size / 1048576).toFixed(2)} MiB`,
    );

    // Back to the cold build's fragments, its artifact removed: the kept tree is rebuilt from the warm build's state.
    // An incremental build must give the bytes a clean one gave.
    fs.writeFileSync(networkFragment, original);
    await store.gc([warm.result.key]);
    const back = await build(store, "bench-back", fragments);
    console.log(
      `rebuild of the cold build's key in the kept tree: ${back.wallSeconds.toFixed(0)} s wall, ` +
        `${back.cpuSeconds.toFixed(0)} s CPU; vmlinuz ${same(back.result.sha256, cold.result.sha256)}, ` +
        `.deb ${same(debSha256(back.result), coldDeb)} the first build's`,
    );
    console.log(
      `load average at the end: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
    );
  } finally {
    fs.rmSync(fragmentDir, { recursive: true, force: true });
    if (keep) console.log(`store kept at ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
