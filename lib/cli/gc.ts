import { RunReport, runProgram } from "../runner/local-runner";
import { findProjectRoot, stackStore } from "../runner/stack";
import { stepDefinitions } from "../steps/registry";
import { parseArgs } from "./args";

export const gcHelp = `usage: antidote-images gc [--stack S] [--dry-run]

Removes from the stack's artifact store every artifact that the stack's current steps do not need: the keys of
every step of every image (as 'plan' computes them), and everything those build on, are kept.

options:
  --stack S    stack whose program and store to use   default: local
  --dry-run    only list what would be removed`;

export async function gcCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, ["stack"], ["dry-run"]);
  if (flags.help) {
    console.log(gcHelp);
    return 0;
  }
  const root = findProjectRoot();
  const stack = typeof flags.stack === "string" ? flags.stack : "local";
  const store = stackStore(root, stack);
  const report = await runProgram({ root, stack, mode: "plan" });
  const { removed, kept } = await store.gc(stepKeys(report), { dryRun: flags["dry-run"] === true });
  for (const key of removed) console.log(`${flags["dry-run"] ? "would remove" : "removed"} ${key}`);
  console.error(
    `gc: ${store.location}: kept ${kept.length}, ${flags["dry-run"] ? "would remove" : "removed"} ${removed.length}`,
  );
  return 0;
}

/**
 * The keys of the report's build steps: what gc keeps (with what they build on). Publications (`docker push:…`) and
 * plain commands are in the report too, but the store holds nothing of theirs.
 */
export function stepKeys(report: RunReport): string[] {
  return report.steps.filter((s) => Object.hasOwn(stepDefinitions, s.kind)).map((s) => s.key);
}
