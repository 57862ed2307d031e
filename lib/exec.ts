/**
 * The process layer: the one way the library starts a child process. It sits at the bottom of the import graph (it
 * imports nothing of the library) so that steps, the VM helpers, the distributions and the runner all use it.
 *
 * Every child runs in its own process group, registered with this process's **reaper**: a small Perl process started
 * on first use, in a session of its own, reading a pipe whose only writer is this process. When this process ends —
 * normally, by an exception or by SIGKILL — the kernel closes the pipe; the reaper reads end-of-file, SIGKILLs every
 * group still registered, waits until they are gone and removes every registered scratch path. So nothing a build
 * started outlives it, even when the runner is killed with SIGKILL, and each level (runner, step command) reaps its
 * own children.
 *
 * Why a reaper rather than `PR_SET_PDEATHSIG` (`setpriv --pdeathsig`): the death signal reaches only the direct child,
 * not what it started (make's compilers, mmdebstrap's apt, install.sh's daemons), is tied to the thread that forked,
 * and cannot delete a scratch directory or a credentials file. Perl is already required (mmdebstrap is written in it).
 * A process that leaves its group on purpose (`setsid`) is out of the reaper's reach; the rootfs step runs hooks in a
 * PID namespace for that reason (`lib/steps/rootfs/tree.ts`).
 */
import { ChildProcess, spawn, StdioOptions } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Writable } from "stream";

/** Grace period between SIGTERM and SIGKILL when a group is stopped. */
export const KILL_GRACE_MS = 5000;

/**
 * The reaper: lines `+g <pgid>` / `-g <pgid>` register and forget a process group, `+p <pid>` / `-p <pid>` a single
 * process, `+d <path>` / `-d <path>` a scratch path. On end-of-file it kills what is registered, waits up to 10 s until
 * none of it runs (so nothing writes into a directory being removed), then removes the paths.
 */
const REAPER_SCRIPT = String.raw`
my (%kill, %paths);
while (my $line = <STDIN>) {
  chomp $line;
  my ($op, $kind, $arg) = $line =~ /^([+-])([gpd]) (.+)$/ or next;
  my ($set, $id) = $kind eq "d" ? (\%paths, $arg) : (\%kill, $kind eq "g" ? -$arg : $arg);
  if ($op eq "+") { $set->{$id} = 1 } else { delete $set->{$id} }
}
kill "KILL", keys %kill if %kill;
for (1 .. 100) {
  last unless running();
  select undef, undef, undef, 0.1;
}
exec "rm", "-rf", "--", keys %paths if %paths;

# Whether a killed process or group member still runs. Zombies do not count: an orphan's is reaped by init when
# init gets to it, which can take seconds.
sub running {
  for my $stat (glob "/proc/[0-9]*/stat") {
    open my $fh, "<", $stat or next;
    my $line = <$fh> // next;
    my ($pid) = $stat =~ m{(\d+)};
    my ($state, undef, $pgrp) = split / /, substr($line, rindex($line, ")") + 2);
    return 1 if $state ne "Z" && ($kill{-$pgrp} || $kill{$pid});
  }
  return 0;
}
`;

let reaperInput: Writable | undefined;

/** Sends one line to the reaper, starting it first if this process has none yet. */
function tellReaper(line: string): void {
  if (!reaperInput) {
    const reaper = spawn("perl", ["-e", REAPER_SCRIPT], {
      cwd: "/",
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    reaper.on("error", (err) =>
      process.stderr.write(
        `could not start the process reaper (perl): ${err.message}; a SIGKILL would orphan builds\n`,
      ),
    );
    reaper.unref();
    const input = reaper.stdin!;
    input.on("error", () => undefined);
    // The pipe must not keep this process alive: its closing at exit is the reaper's cue.
    (input as unknown as { unref(): void }).unref();
    reaperInput = input;
  }
  reaperInput.write(`${line}\n`);
}

/**
 * Makes `dir` scratch space of this process: if the process dies before calling the returned function, its reaper
 * removes `dir`. The returned function removes `dir` now (if it is still there) and forgets it.
 */
export function ownScratch(dir: string): () => void {
  if (dir.includes("\n")) throw new Error(`scratch path with a line break: ${JSON.stringify(dir)}`);
  tellReaper(`+d ${dir}`);
  return () => {
    fs.rmSync(dir, { recursive: true, force: true });
    tellReaper(`-d ${dir}`);
  };
}

export interface SpawnOptions {
  /** @default the current directory */
  cwd?: string;
  /** The child's whole environment. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** @default ["ignore", "pipe", "pipe"] */
  stdio?: StdioOptions;
  /**
   * Leave the child in this process's group, so the terminal's job control (Ctrl-C, window size) reaches it, as an
   * interactive ssh needs; the reaper then kills it alone. @default false: a process group of its own
   */
  foreground?: boolean;
}

/**
 * Starts a child in its own process group (its pid is the group's id) that dies with this process: it is registered
 * with the reaper until it exits, and when it exits whatever it left in its group is killed too.
 */
export function spawnChild(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: options.stdio ?? ["ignore", "pipe", "pipe"],
    detached: !options.foreground,
  });
  const pid = child.pid;
  if (pid === undefined) return child; // could not start: the child emits "error"
  const entry = options.foreground ? `p ${pid}` : `g ${pid}`;
  tellReaper(`+${entry}`);
  child.once("exit", () => {
    // Whatever the command left in its group (daemons, QEMU) goes with it.
    if (!options.foreground) killGroup(pid, "SIGKILL");
    tellReaper(`-${entry}`);
  });
  return child;
}

/**
 * Signals a whole process group; a signal other than SIGKILL is followed by SIGKILL after `graceMs`. Ignores a group
 * that is gone.
 */
export function killGroup(pgid: number, signal: NodeJS.Signals, graceMs = KILL_GRACE_MS): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    return;
  }
  if (signal !== "SIGKILL") {
    setTimeout(() => killGroup(pgid, "SIGKILL"), graceMs).unref();
  }
}

export interface CaptureOptions {
  /** @default the current directory */
  cwd?: string;
  /** The child's whole environment. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin. @default none: stdin is /dev/null */
  input?: string | Buffer;
  /** Kill the group (SIGKILL) after this long. @default none */
  timeoutMs?: number;
  /** Kill the group (SIGKILL) when this aborts. @default none */
  signal?: AbortSignal;
}

export interface Captured {
  /** Exit status; null when the child was killed by a signal. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a short command through {@link spawnChild} and collects its output. Rejects only when it could not start or
 * `signal` was already aborted; a failure of the command is in the result.
 */
export function capture(command: string, args: string[], options: CaptureOptions = {}): Promise<Captured> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(new Error(`stopped before ${command} ran`));
    const child = spawnChild(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr!.on("data", (chunk: Buffer) => err.push(chunk));
    child.stdin?.on("error", () => undefined);
    if (options.input !== undefined) child.stdin!.end(options.input);
    let timedOut = false;
    const kill = () => child.pid !== undefined && killGroup(child.pid, "SIGKILL");
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            kill();
          }, options.timeoutMs);
    options.signal?.addEventListener("abort", kill, { once: true });
    const done = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", kill);
    };
    child.on("error", (e) => {
      done();
      reject(new Error(`could not run ${command}: ${e.message}`));
    });
    child.on("close", (status, signal) => {
      done();
      resolve({
        status,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    });
  });
}

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

/**
 * A log file commands write to. Commands run through {@link CommandLog.exec} append their output to it and are
 * stopped with their whole group (SIGTERM, then SIGKILL) when `signal` aborts, so nothing outlives a cancelled build.
 */
export class CommandLog {
  private readonly running = new Set<number>();

  constructor(
    readonly path: string,
    protected readonly signal: AbortSignal,
  ) {
    signal.addEventListener("abort", () => {
      for (const pgid of this.running) killGroup(pgid, "SIGTERM");
    });
  }

  write(text: string): void {
    fs.appendFileSync(this.path, text.endsWith("\n") ? text : `${text}\n`);
  }

  /** Runs a command with its output appended to the log; rejects with {@link ExecError} when it fails. */
  exec(command: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const display = [command, ...args].join(" ");
    this.signal.throwIfAborted();
    this.write(`$ ${display}`);
    const logFd = fs.openSync(this.path, "a");
    return new Promise<ExecResult>((resolve, reject) => {
      const child = spawnChild(command, args, {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        stdio: [options.input === undefined ? "ignore" : "pipe", options.capture ? "pipe" : logFd, logFd],
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
        if (pgid !== undefined) this.running.delete(pgid);
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

/**
 * Fails when `program` is not on PATH, naming why it is needed and the Debian package that has it: checked before a
 * step spends minutes on work it could not finish.
 */
export function requireProgram(
  program: string,
  debianPackage: string,
  why: string,
  env: NodeJS.ProcessEnv = process.env,
): void {
  const found = (env.PATH ?? "")
    .split(":")
    .some((dir) => dir !== "" && fs.statSync(path.join(dir, program), { throwIfNoEntry: false })?.isFile());
  if (!found) {
    throw new Error(
      `${why}, but ${program} is not installed on this build host ` +
        `(Debian's package '${debianPackage}', which scripts/setup.sh installs)`,
    );
  }
}
