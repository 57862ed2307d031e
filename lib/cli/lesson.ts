import * as path from "path";
import { LESSON_FILE, checkLessonFile } from "../lesson/check";
import { loadMetadata } from "../metadata/metadata";
import { findProjectRoot } from "../runner/stack";
import { UsageError, parseArgs } from "./args";

export const lessonHelp = `usage: antidote-images lesson validate <file or lesson directory>... [--image NAME | --interfaces LIST] [--host NAME] [--json]

Checks a lesson configuration (docs/lessons.md) with the code the VM runs: antidote-configure --check --static, the
script every image carries, run here with the system perl. It checks the document, the source files and templates it
names (relative to its directory) and the interfaces it configures, and changes nothing. Prints every problem as
'<file>: <entry>: <what was expected>'; exit status 1 when a file has one.

options:
  --image NAME       check interfaces against images/NAME/metadata.yaml of this project
  --interfaces LIST  check interfaces against these names (comma-separated, e.g. eth0,eth1,eth2)
  --host NAME        check only what the VM named NAME applies (hosts.NAME over the top level)
  --json             print one line per file on stdout instead: {"file", "valid", "problems": [{"entry", "message"}]}`;

export async function lessonCommand(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv, ["image", "interfaces", "host"], ["json"]);
  if (flags.help) {
    console.log(lessonHelp);
    return 0;
  }
  const [sub, ...targets] = positional;
  if (sub !== "validate")
    throw new UsageError(
      sub ? `unknown subcommand '${sub}' (known: validate)` : "expected a subcommand: validate",
    );
  if (targets.length === 0) throw new UsageError("expected a configuration file or a lesson directory");
  if (flags.image && flags.interfaces) throw new UsageError("give --image or --interfaces, not both");
  const interfaces =
    typeof flags.image === "string"
      ? loadMetadata(path.join(findProjectRoot(), "images", flags.image)).interfaces.map((i) => i.name)
      : typeof flags.interfaces === "string"
        ? flags.interfaces.split(",").filter((i) => i !== "")
        : undefined;
  if (interfaces?.length === 0) throw new UsageError("--interfaces needs at least one interface name");
  const host = typeof flags.host === "string" ? flags.host : undefined;
  let invalid = 0;
  for (const target of targets) {
    const file = path.extname(target) === ".json" ? target : path.join(target, LESSON_FILE);
    const problems = checkLessonFile(file, { interfaces, host });
    if (problems.length > 0) invalid++;
    if (flags.json) {
      console.log(JSON.stringify({ file, valid: problems.length === 0, problems }));
      continue;
    }
    for (const p of problems) console.error(`${file}: ${p.entry}: ${p.message}`);
    console.error(
      problems.length > 0
        ? `lesson validate: ${file}: ${problems.length} problem${problems.length === 1 ? "" : "s"}`
        : `lesson validate: ${file}: valid${interfaces ? ` (interfaces ${interfaces.join(", ")})` : ""}`,
    );
  }
  return invalid > 0 ? 1 : 0;
}
