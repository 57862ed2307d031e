import * as path from "path";
import { LESSON_FILE, LessonError, loadLesson } from "../lesson/validate";
import { loadMetadata } from "../metadata/metadata";
import { findProjectRoot } from "../runner/stack";
import { UsageError, parseArgs } from "./args";

export const lessonHelp = `usage: antidote-images lesson validate <file or lesson directory> [--image NAME | --interfaces LIST] [--host NAME]

Checks a lesson configuration (docs/lessons.md) by the rules antidote-configure applies inside the VM, before
anything is changed: the document, the source files and templates it names (relative to its directory), and the
interfaces it configures. Prints every problem as '<entry>: <what was expected>'; exit status 1 when there is one.

options:
  --image NAME       check interfaces against images/NAME/metadata.yaml of this project
  --interfaces LIST  check interfaces against these names (comma-separated, e.g. eth0,eth1,eth2)
  --host NAME        check only what the VM named NAME applies (hosts.NAME over the top level)`;

export async function lessonCommand(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv, ["image", "interfaces", "host"]);
  if (flags.help) {
    console.log(lessonHelp);
    return 0;
  }
  const [sub, target, ...extra] = positional;
  if (sub !== "validate")
    throw new UsageError(
      sub ? `unknown subcommand '${sub}' (known: validate)` : "expected a subcommand: validate",
    );
  if (target === undefined) throw new UsageError("expected the configuration file or the lesson directory");
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (flags.image && flags.interfaces) throw new UsageError("give --image or --interfaces, not both");
  const interfaces =
    typeof flags.image === "string"
      ? loadMetadata(path.join(findProjectRoot(), "images", flags.image)).interfaces.map((i) => i.name)
      : typeof flags.interfaces === "string"
        ? flags.interfaces.split(",").filter((i) => i !== "")
        : undefined;
  const file = path.extname(target) === ".json" ? target : path.join(target, LESSON_FILE);
  try {
    loadLesson(file, { interfaces, host: typeof flags.host === "string" ? flags.host : undefined });
  } catch (err) {
    if (!(err instanceof LessonError)) throw err;
    for (const p of err.problems) console.error(`${file}: ${p.entry}: ${p.message}`);
    console.error(
      `lesson validate: ${file}: ${err.problems.length} problem${err.problems.length === 1 ? "" : "s"}`,
    );
    return 1;
  }
  console.error(
    `lesson validate: ${file}: valid${interfaces ? ` (interfaces ${interfaces.join(", ")})` : ""}`,
  );
  return 0;
}
