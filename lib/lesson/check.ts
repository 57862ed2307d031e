/**
 * Lesson configuration checks on the build host. The rules live once, in `antidote-configure` (Perl, in every image,
 * docs/lessons.md); the host runs that very script with `--check --static --json`, so the host and the VM can never
 * disagree about a `lesson.json`.
 */
import { spawnSync } from "child_process";
import * as path from "path";
import { Problem } from "../schema-errors";

/** The configuration file's name in the lesson directory. */
export const LESSON_FILE = "lesson.json";

/** The script the VMs run at boot (the Rootfs step installs it as /usr/local/bin/antidote-configure). */
export const ANTIDOTE_CONFIGURE = path.join(__dirname, "..", "scripts", "stage3", "antidote-configure");

export interface LessonCheckOptions {
  /** The VM's interface names (e.g. from the image metadata); interfaces and route devices must be among them. @default not checked */
  interfaces?: string[];
  /** Check only what this host applies (hosts.NAME over the top level). @default every host section */
  host?: string;
}

/**
 * antidote-configure's arguments for a validation that looks at nothing of the machine it runs on (its interfaces,
 * users, services, host name): the same on the build host and in a VM.
 */
export function lessonCheckArgs(file: string, options: LessonCheckOptions = {}): string[] {
  return [
    ...["--config", file, "--check", "--static", "--json"],
    ...(options.interfaces ? ["--interfaces", options.interfaces.join(",")] : []),
    ...(options.host !== undefined ? ["--host", options.host] : []),
  ];
}

/** The part of antidote-configure's `--json` report a check uses. */
interface CheckReport {
  result: string;
  errors: Problem[];
}

/**
 * Checks a configuration file (its directory is the lesson directory) by running antidote-configure on it with the
 * system `perl`: every problem, in antidote-configure's order and words (none when the file is valid). Throws when the
 * script cannot run or does not answer with a report.
 */
export function checkLessonFile(file: string, options: LessonCheckOptions = {}): Problem[] {
  const run = spawnSync("perl", [ANTIDOTE_CONFIGURE, ...lessonCheckArgs(file, options)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const command = `perl ${ANTIDOTE_CONFIGURE} --check`;
  if (run.error) throw new Error(`${command}: cannot run (it needs perl on this host): ${run.error.message}`);
  let report: CheckReport;
  try {
    report = JSON.parse(run.stdout) as CheckReport;
  } catch {
    throw new Error(
      `${command}: exit status ${run.status ?? run.signal}, expected a JSON report on stdout; got: ${(run.stderr + run.stdout).trim()}`,
    );
  }
  // Exit 4 (no such file) reports its problem as entry "(file)", like a file that is not JSON.
  if (!["valid", "invalid", "missing"].includes(report.result)) {
    throw new Error(`${command}: unexpected result "${report.result}": ${run.stderr.trim()}`);
  }
  return report.errors;
}
