import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { StepRecord, runProgram } from "../runner/local-runner";
import { findProjectRoot, stackStore } from "../runner/stack";
import { ArtifactStore } from "../store/store";
import { parseArgs } from "./args";

export const diffHelp = `usage: antidote-images diff [--stack S] [image…]

For every step that would rebuild, what changed since its last build: the changed input files (install.sh, kernel
fragments, metadata) as unified diffs against the copies the store kept, and old → new for changed arguments and
input steps. Builds nothing.

options:
  --stack S   stack whose config and store to use   default: local
  image…      only these images (and what they build on)`;

export async function diffCommand(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv, ["stack"]);
  if (flags.help) {
    console.log(diffHelp);
    return 0;
  }
  const root = findProjectRoot();
  const stack = typeof flags.stack === "string" ? flags.stack : "local";
  const store = stackStore(root, stack);
  const report = await runProgram({ root, stack, mode: "plan", images: positional });
  const rebuilding = report.steps.filter((s) => s.status === "would-build");
  for (const step of rebuilding) process.stdout.write(await describeStep(step, store, root));
  const cached = report.steps.length - rebuilding.length;
  console.error(`diff: ${rebuilding.length} step(s) would rebuild, ${cached} unchanged`);
  return 0;
}

/** One step's changes: a header, then each changed file as a unified diff and each other change as old → new. */
async function describeStep(step: StepRecord, store: ArtifactStore, root: string): Promise<string> {
  const out = [`=== ${step.image}: ${step.name} (${step.kind}) would rebuild: ${step.reason}`];
  for (const change of step.changes ?? []) {
    if (change.what === "file") {
      const file = step.files?.[change.name];
      const before = change.from ? await store.readBlob(change.from) : Buffer.alloc(0);
      if (before === undefined || file === undefined) {
        out.push(
          `--- ${change.name}: changed (${short(change.from)} → ${short(change.to)}; the old content was not kept)`,
        );
        continue;
      }
      out.push(unifiedDiff(before, path.resolve(root, file), change.name, file));
    } else if (change.what === "parent") {
      out.push(
        `input step '${change.name}': ${short(change.from)} → ${short(change.to)} (it rebuilds, see above)`,
      );
    } else {
      out.push(`${change.what} ${change.name}: ${change.from ?? "(unset)"} → ${change.to ?? "(unset)"}`);
    }
  }
  return out.join("\n") + "\n\n";
}

function short(key: string | undefined): string {
  return key ? key.slice(0, 12) : "(none)";
}

/** `diff -u` of the recorded content against the file as it is now. */
function unifiedDiff(before: Buffer, file: string, role: string, shown: string): string {
  const old = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "antidote-diff-")), "before");
  fs.writeFileSync(old, before);
  try {
    const run = spawnSync(
      "diff",
      ["-u", "--label", `${shown} (last build)`, "--label", `${shown} (now)`, old, file],
      {
        encoding: "utf8",
      },
    );
    if (run.status === 2 || run.error)
      throw new Error(`diff of ${role} failed: ${run.stderr || run.error?.message}`);
    return run.stdout.trimEnd();
  } finally {
    fs.rmSync(path.dirname(old), { recursive: true, force: true });
  }
}
