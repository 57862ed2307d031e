/**
 * Runner benchmark: how long `antidote-images plan` and an `up` with nothing to do take on a stack whose steps are
 * all in the store — the program run under Pulumi's language host, every step answered from the store — and how
 * that splits into the runner's own start and the program's run (`pulumi preview` of index.ts under the language
 * host with this process as the engine). Median, fastest and slowest of N runs. No assertions: figures only.
 *
 *   npx ts-node bench/runner.ts [--stack S] [--runs N]     (default: local, 5; build the stack first with `up`)
 */
import { spawnSync } from "child_process";
import * as path from "path";
import { RunReport } from "../lib/runner/local-runner";
import { preview } from "../test/language-host/harness";
import { PROJECT_ROOT } from "../test/helpers";

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
}

const STACK = option("stack", "local");
const RUNS = Number(option("runs", "5"));
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: expected a whole number ≥ 1, got ${RUNS}`);

function figures(label: string, ms: number[]): void {
  const sorted = [...ms].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const s = (v: number) => `${(v / 1000).toFixed(2)} s`;
  console.log(
    `${label.padEnd(34)} median ${s(median)}  fastest ${s(sorted[0])}  slowest ${s(sorted[sorted.length - 1])}`,
  );
}

/** One CLI run; its wall time, and its report's counts (to show nothing was built). */
function cli(command: "up" | "plan"): { ms: number; report: RunReport } {
  const started = Date.now();
  const run = spawnSync(
    process.execPath,
    [path.join(PROJECT_ROOT, "bin", "antidote-images.js"), command, "--stack", STACK, "--json"],
    { cwd: PROJECT_ROOT, encoding: "utf8", maxBuffer: 64 << 20 },
  );
  const ms = Date.now() - started;
  if (run.status !== 0) throw new Error(`${command} exited ${run.status}:\n${run.stderr.slice(-2000)}`);
  return { ms, report: JSON.parse(run.stdout) as RunReport };
}

async function main() {
  const counts = (report: RunReport) => {
    const by: Record<string, number> = {};
    for (const step of report.steps) by[step.status] = (by[step.status] ?? 0) + 1;
    return Object.entries(by)
      .map(([status, n]) => `${n} ${status}`)
      .join(", ");
  };
  for (const command of ["plan", "up"] as const) {
    const times: number[] = [];
    let last: RunReport | undefined;
    for (let i = 0; i < RUNS; i++) {
      const { ms, report } = cli(command);
      times.push(ms);
      last = report;
    }
    figures(`antidote-images ${command} --stack ${STACK}`, times);
    console.log(`${"".padEnd(34)} ${last ? counts(last) : ""}`);
  }
  const program: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = Date.now();
    const run = await preview(STACK);
    if (run.exitCode !== 0) throw new Error(`the program failed: ${run.errors.join("\n")}`);
    program.push(Date.now() - started);
  }
  figures("the program alone (preview)", program);
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exitCode = 1;
});
