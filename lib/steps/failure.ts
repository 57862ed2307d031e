import * as path from "path";
import { ExecError } from "../exec";

/**
 * A failed step as a person reads it: one line naming the cause (the package apt could not find, the check that
 * failed, the script and its exit status), the few log lines that show it, and where the whole log is.
 */
export interface FailureSummary {
  headline: string;
  /** At most {@link EXCERPT_LINES} lines, each once, in the order the log has them. */
  excerpt: string[];
  log?: string;
}

/** How many log lines a failure shows: enough for the cause and its context, few enough to read. */
export const EXCERPT_LINES = 8;

/** How much of a log's end {@link summarizeFailure} is given to look for the cause. */
export const LOG_LINES_SEARCHED = 200;

/** How a step names itself in its messages: `<image>: step <name> (<kind>)`. */
export function stepSubject(step: { image: string; name: string; kind: string }): string {
  return `${step.image}: step ${step.name} (${step.kind})`;
}

/**
 * What an error a step threw and the end of its log say went wrong. The log's part that matters is the output of
 * the command that ran last (after its `$ ` line); the step's own `# ` notes and command lines are never the cause.
 */
export function summarizeFailure(error: Error, logText: string, log?: string): FailureSummary {
  const [first, ...details] = error.message.split("\n");
  const output = lastCommandOutput(logText);
  const excerptFrom = (lines: string[]) => relevantLines(lines, EXCERPT_LINES);
  const missing = missingPackages([...output, ...details]);
  if (missing.length > 0) {
    return {
      headline: `apt could not find package${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
      excerpt: excerptFrom(output),
      log,
    };
  }
  const kernelOptions = details.map((l) => KERNEL_OPTION.exec(l)).filter((m) => m !== null);
  if (KERNEL_CHECK.test(first) && kernelOptions.length > 0) {
    return {
      headline:
        kernelOptions.length === 1
          ? `kernel option CONFIG_${kernelOptions[0][1]} did not get its value: ${kernelOptions[0][2]}`
          : `kernel options ${kernelOptions.map((m) => `CONFIG_${m[1]}`).join(", ")} did not get their values`,
      excerpt: excerptFrom(details),
      log,
    };
  }
  if (error instanceof ExecError) {
    // The message is the whole command line: the cause is what the command said last, else how it ended.
    const said = lastErrorLine(output);
    return {
      headline: said ?? `${programName(error.command)} ${error.status}`,
      excerpt: excerptFrom(output),
      log,
    };
  }
  return {
    headline: withoutTrailingColon(first),
    excerpt: excerptFrom(details.length > 0 ? details : output),
    log,
  };
}

/** Whether a line of a step command's stderr starts its failure report ({@link formatFailure}). */
export function startsFailureReport(line: string): boolean {
  return line.startsWith(ERROR_PREFIX);
}

/**
 * A failure as the step command prints it on stderr: `error: <headline>`, the excerpt indented, `log: <path>`.
 * With `prefix` "" it is the text a run report keeps (the headline first).
 */
export function formatFailure(failure: FailureSummary, prefix = ERROR_PREFIX): string {
  return [
    `${prefix}${failure.headline}`,
    ...failure.excerpt.map((l) => `${EXCERPT_INDENT}${l}`),
    ...(failure.log ? [`${LOG_PREFIX}${failure.log}`] : []),
  ].join("\n");
}

/**
 * The failure a step command reported on its stderr (its last {@link formatFailure} block), the headline without
 * `subject` (the step's own name, which whoever shows the record already says). Output with no report (the command
 * crashed, ssh could not connect) gives its last meaningful error line and the lines before it.
 */
export function failureFromOutput(stderr: string, subject?: string): FailureSummary {
  const lines = stderr.replace(/\n$/, "").split("\n");
  const start = lines.map(startsFailureReport).lastIndexOf(true);
  if (start < 0) {
    const meaningful = lines.map((l) => l.trimEnd()).filter((l) => l.trim() !== "");
    return {
      headline: lastErrorLine(meaningful) ?? meaningful.at(-1) ?? "",
      excerpt: relevantLines(meaningful.slice(0, -1), EXCERPT_LINES),
    };
  }
  let headline = lines[start].slice(ERROR_PREFIX.length);
  // `<subject> failed: <cause>`, `<subject> was interrupted`, `<subject>: <what is wrong>`.
  if (subject && headline.startsWith(subject))
    headline = headline.slice(subject.length).replace(/^(:| failed:)? /, "");
  const excerpt: string[] = [];
  let log: string | undefined;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith(LOG_PREFIX)) log = line.slice(LOG_PREFIX.length);
    else if (line.startsWith(EXCERPT_INDENT)) excerpt.push(line.slice(EXCERPT_INDENT.length));
  }
  return { headline, excerpt, log };
}

const ERROR_PREFIX = "error: ";
const LOG_PREFIX = "log: ";
const EXCERPT_INDENT = "  ";

/** apt's words for a package it does not have (`apt-get install`, also inside mmdebstrap). */
const APT_MISSING = [
  /^E: Unable to locate package (\S+)/,
  /^E: Package '([^']+)' has no installation candidate/,
];

/** The kernel step's config check (`ConfigCheckError`): a count, then one line per option. */
const KERNEL_CHECK = /requested kernel option\(s\) did not get their value/;
const KERNEL_OPTION = /^\s*CONFIG_(\w+) \([^)]*\): (.*)$/;

/** A line that reports an error, by the words tools use for one. */
const ERROR_WORDS =
  /^(E|F|ERROR|FATAL):|\b(error|fatal|failed|cannot|can't|could not|unable|not found|no such)\b/i;

/**
 * Lines that only say that something else failed: mmdebstrap's own exit, which follows apt's reason. Skipped when
 * looking for the cause (they stay in the excerpt, as context).
 */
const WRAPPER_LINES = /^E: (mmdebstrap failed to run|setup failed:)/;

/** A command line echoed in a message: many option words (mmdebstrap repeats apt-get's whole command line). */
function isCommandEcho(line: string): boolean {
  return line.startsWith("$ ") || (line.match(/(^|\s)--?[A-Za-z][\w:-]*/g) ?? []).length >= 4;
}

/** The lines after the log's last `$ ` line: what the failing command printed. */
function lastCommandOutput(logText: string): string[] {
  const lines = logText.split("\n");
  const lastCommand = lines.map((l) => l.startsWith("$ ")).lastIndexOf(true);
  return lines.slice(lastCommand + 1);
}

/** The last `count` lines worth showing: no step notes (`# `), command lines or blank lines, each once. */
function relevantLines(lines: string[], count: number): string[] {
  const seen = new Set<string>();
  const kept: string[] = [];
  for (const raw of lines) {
    const line = raw.replace(/\r/g, "").trimEnd();
    if (line.trim() === "" || line.startsWith("# ") || isCommandEcho(line)) continue;
    if (seen.has(line)) continue;
    seen.add(line);
    kept.push(line);
  }
  return kept.slice(-count);
}

function missingPackages(lines: string[]): string[] {
  const names = lines.flatMap((line) =>
    APT_MISSING.map((pattern) => pattern.exec(line)?.[1]).filter((n) => n !== undefined),
  );
  return [...new Set(names)];
}

function lastErrorLine(lines: string[]): string | undefined {
  return lines
    .map((l) => l.trim())
    .filter((l) => ERROR_WORDS.test(l) && !WRAPPER_LINES.test(l) && !isCommandEcho(l))
    .at(-1);
}

/**
 * The program a command line runs, past the wrappers that isolate it (`unshare` and its options, `env` and its
 * assignments).
 */
function programName(command: string): string {
  const words = command.split(" ");
  const program = words.find(
    (w, i) =>
      !/^(unshare|env|setsid|nice)$/.test(path.basename(w)) &&
      !w.startsWith("-") &&
      !w.includes("=") &&
      // unshare's `--propagation <mode>` takes the one separate value among the isolating options.
      words[i - 1] !== "--propagation",
  );
  return path.basename(program ?? words[0]);
}

/** A first line that introduces the lines after it (`…; last output:`) without its colon. */
function withoutTrailingColon(line: string): string {
  return line.replace(/(;\s*last output)?:\s*$/, "");
}
