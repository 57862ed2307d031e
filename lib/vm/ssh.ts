import { spawn } from "child_process";
import * as net from "net";
import { killGroup } from "../steps/log";

/** Where and as whom to log in. */
export interface SshTarget {
  port: number;
  user: string;
  password: string;
  /** @default "127.0.0.1" */
  host?: string;
}

export interface SshResult {
  /** Exit status of the remote command; null when ssh was killed (timeout, abort). */
  status: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

/** A throwaway VM's host key changes on every boot: neither check it nor remember it. */
export const SSH_OPTIONS = [
  "-o",
  "StrictHostKeyChecking=no",
  "-o",
  "UserKnownHostsFile=/dev/null",
  "-o",
  "GlobalKnownHostsFile=/dev/null",
  "-o",
  "LogLevel=ERROR",
  "-o",
  "PubkeyAuthentication=no",
  "-o",
  "PreferredAuthentications=password,keyboard-interactive",
  "-o",
  "NumberOfPasswordPrompts=1",
  "-o",
  "ConnectTimeout=15",
  "-o",
  "ServerAliveInterval=5",
  "-o",
  "ServerAliveCountMax=6",
];

/** The `sshpass ssh ...` argument list (the password goes through the environment, not the process list). */
export function sshArgs(target: SshTarget, command: string): string[] {
  return [
    "-e",
    "ssh",
    ...SSH_OPTIONS,
    "-p",
    String(target.port),
    `${target.user}@${target.host ?? "127.0.0.1"}`,
    "--",
    command,
  ];
}

/**
 * Runs a command in the guest with password authentication. Never throws for the command's failure: the status and
 * output are the result. ssh runs in its own process group, killed on timeout or abort.
 */
export function sshRun(
  target: SshTarget,
  command: string,
  options: { input?: string | Buffer; timeoutMs: number; signal?: AbortSignal },
): Promise<SshResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(new Error("stopped before ssh ran"));
    const child = spawn("sshpass", sshArgs(target, command), {
      detached: true,
      env: { ...process.env, SSHPASS: target.password },
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (c: Buffer) => out.push(c));
    child.stderr!.on("data", (c: Buffer) => err.push(c));
    child.stdin?.on("error", () => undefined);
    if (options.input !== undefined) child.stdin!.end(options.input);
    let timedOut = false;
    const kill = () => child.pid !== undefined && killGroup(child.pid, "SIGKILL");
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs);
    options.signal?.addEventListener("abort", kill, { once: true });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`could not run sshpass: ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", kill);
      kill();
      resolve({
        status: code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        durationMs: Date.now() - started,
        timedOut,
      });
    });
  });
}

/** sshpass's exit status when the password was refused. */
export const SSHPASS_WRONG_PASSWORD = 5;

/**
 * Whether an SSH server answers on the port: its banner (`SSH-2.0-...`) arrives. QEMU's user-mode network accepts
 * every forwarded connection itself, so an accepted connection alone proves nothing about the guest.
 */
export function sshBanner(port: number, timeoutMs: number, host = "127.0.0.1"): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    let data = "";
    const done = (banner?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(banner);
    };
    const timer = setTimeout(() => done(), timeoutMs);
    socket.on("data", (chunk) => {
      data += chunk.toString("latin1");
      const line = data.split("\n")[0];
      if (data.includes("\n") || data.length > 255) done(line.startsWith("SSH-") ? line.trim() : undefined);
    });
    socket.on("error", () => done());
    socket.on("close", () => done());
  });
}
