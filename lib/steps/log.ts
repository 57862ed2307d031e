import * as fs from "fs";
import { CommandLog } from "../exec";

/** Where progress lines go when nobody asked for them: stderr (the step command's, which the runner shows). */
export function progressToStderr(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * A step's build log: commands run through it ({@link CommandLog.exec}) write to it and are stopped with their whole
 * group when the step is aborted; progress lines go to the log and to whoever watches the build.
 */
export class StepLog extends CommandLog {
  constructor(
    path: string,
    signal: AbortSignal,
    /** Where short progress lines go besides the log (the runner shows them). */
    private readonly progressSink: (line: string) => void = progressToStderr,
  ) {
    super(path, signal);
  }

  /** A short line for whoever watches the build, also kept in the log. */
  progress(line: string): void {
    this.write(`# ${line}`);
    this.progressSink(line);
  }

  /** The last `lines` lines of the log. */
  tail(lines = 40): string {
    return tailOfFile(this.path, lines);
  }
}

export function tailOfFile(file: string, lines = 40): string {
  let text: string;
  try {
    const fd = fs.openSync(file, "r");
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(length);
      fs.readSync(fd, buffer, 0, length, size - length);
      text = buffer.toString("utf8");
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return "";
  }
  return text.replace(/\n$/, "").split("\n").slice(-lines).join("\n");
}
