import { spawn } from "child_process";
import * as fs from "fs";

export interface ExecOptions {
  cwd?: string;
  /** Added to the inherited environment. */
  env?: Record<string, string>;
  /** Written to the process's stdin. */
  input?: string | Buffer;
  /** Return stdout instead of sending it to the log. */
  capture?: boolean;
  /** Kill the process (and its whole group) after this long. */
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: string;
}

/** A command that failed: names it, its exit status and where its output went. */
export class ExecError extends Error {
  constructor(
    readonly command: string,
    readonly status: string,
    readonly log: string,
  ) {
    super(`'${command}' ${status}`);
  }
}

/** Grace period between SIGTERM and SIGKILL when a command is stopped. */
const KILL_GRACE_MS = 5000;

/** Where progress lines go when nobody asked for them: stderr (the step command's, which the runner shows). */
export function progressToStderr(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * A step's build log. Commands run through {@link StepLog.exec} write to it, run in their own process group and are
 * killed with their whole group when the step is aborted, so nothing outlives a cancelled build.
 */
export class StepLog {
  private readonly running = new Set<number>();

  constructor(
    readonly path: string,
    private readonly signal: AbortSignal,
    /** Where short progress lines go besides the log (the runner shows them). */
    private readonly progressSink: (line: string) => void = progressToStderr,
  ) {
    signal.addEventListener("abort", () => {
      for (const pgid of this.running) killGroup(pgid, "SIGTERM");
    });
  }

  write(text: string): void {
    fs.appendFileSync(this.path, text.endsWith("\n") ? text : `${text}\n`);
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

  /** Runs a command with its output appended to the log; rejects with {@link ExecError} when it fails. */
  exec(command: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const display = [command, ...args].join(" ");
    this.signal.throwIfAborted();
    this.write(`$ ${display}`);
    const logFd = fs.openSync(this.path, "a");
    return new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(command, args, {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        stdio: [options.input === undefined ? "ignore" : "pipe", options.capture ? "pipe" : logFd, logFd],
        detached: true,
      });
      const pgid = child.pid;
      if (pgid !== undefined) this.running.add(pgid);
      const chunks: Buffer[] = [];
      child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
      if (options.input !== undefined) child.stdin?.end(options.input);
      let timedOut = false;
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              if (pgid !== undefined) killGroup(pgid, "SIGTERM");
            }, options.timeoutMs);
      const finish = (err?: Error) => {
        if (timer) clearTimeout(timer);
        if (pgid !== undefined) {
          // Whatever the command left in its group (daemons, QEMU) goes with it.
          killGroup(pgid, "SIGKILL");
          this.running.delete(pgid);
        }
        fs.closeSync(logFd);
        if (err) reject(err);
        else resolve({ stdout: Buffer.concat(chunks).toString("utf8") });
      };
      child.on("error", (err) =>
        finish(new ExecError(display, `could not start: ${err.message}`, this.path)),
      );
      child.on("close", (code, signal) => {
        if (code === 0) return finish();
        const status = timedOut
          ? `timed out after ${options.timeoutMs} ms`
          : this.signal.aborted
            ? "was stopped"
            : signal
              ? `was killed by ${signal}`
              : `exited with status ${code}`;
        finish(new ExecError(display, status, this.path));
      });
    });
  }
}

/** Signals a whole process group, escalating to SIGKILL after a grace period. Ignores a group that is gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    return;
  }
  if (signal !== "SIGKILL") {
    setTimeout(() => killGroup(pgid, "SIGKILL"), KILL_GRACE_MS).unref();
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
