/**
 * Boot benchmark: boots debian-base's disk with the boot test step three times under TCG, and under KVM when the
 * KVM probe says it works here, and prints boot-to-SSH time (QEMU start → the guest's SSH banner), the whole step's
 * time, and systemd's own account of the boot from the first run. No assertions: figures only.
 *
 *   npx ts-node bench/boot.ts [--runs N]
 */
import * as fs from "fs";
import * as path from "path";
import { BootTestReport } from "../lib/steps/boot-test";
import { runStep } from "../lib/steps/run";
import { kvmVerdict } from "../lib/vm/accel";
import { bootTestSpec, debianBaseDisk, definitions } from "../test/fixtures/disk";
import { sharedTestStore, tempDir } from "../test/helpers";
import { interrupted } from "./interrupt";

/** Boots per accelerator: `--runs N` (default 3); a shared machine's noise wants more. */
const runsAt = process.argv.indexOf("--runs");
const RUNS = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;
if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`--runs: expected a whole number ≥ 1, got ${process.argv[runsAt + 1]}`);

async function main() {
  const store = sharedTestStore();
  const { disk } = await debianBaseDisk(store);
  console.log(`disk ${disk.key.slice(0, 12)}: kernel ${disk.outputs.kernelRelease}`);
  const scripts = tempDir("bench-boot");
  const verdict = await kvmVerdict(store.cacheDir("kvm-probe"));
  console.log(`KVM: ${verdict.usable ? "usable" : "not usable"} (${verdict.reason})`);

  for (const accelerator of verdict.usable ? (["tcg", "kvm"] as const) : (["tcg"] as const)) {
    const boots: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      // A new test.sh each run gives a new key, so every run boots (none comes from the store).
      const test = path.join(scripts, `test-${accelerator}-${i}.sh`);
      fs.writeFileSync(
        test,
        `#!/bin/sh\n# ${Date.now()}\nsystemd-analyze time 2>/dev/null | head -n1\nsystemd-analyze blame 2>/dev/null | head -n5\n`,
      );
      const started = Date.now();
      const result = await runStep(bootTestSpec("debian-base", disk.key, { accelerator }, test), {
        store,
        definitions,
        signal: interrupted,
        progress: () => {},
      });
      const report = JSON.parse(fs.readFileSync(result.primary, "utf8")) as BootTestReport;
      boots.push(report.bootToSshMs!);
      console.log(
        `${accelerator} run ${i}: SSH after ${(report.bootToSshMs! / 1000).toFixed(1)} s, ` +
          `whole step ${((Date.now() - started) / 1000).toFixed(1)} s (${report.checks.length} checks)`,
      );
      if (i === 1) console.log(report.test!.output.replace(/^/gm, "    "));
    }
    boots.sort((a, b) => a - b);
    console.log(
      `${accelerator}: boot-to-SSH median ${(boots[Math.floor(RUNS / 2)] / 1000).toFixed(1)} s over ${RUNS} boots ` +
        `(fastest ${(boots[0] / 1000).toFixed(1)} s, slowest ${(boots[RUNS - 1] / 1000).toFixed(1)} s)` +
        (accelerator === "tcg" ? " (target ≤ 15 s)" : ""),
    );
  }
  fs.rmSync(scripts, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
