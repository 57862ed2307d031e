import * as net from "net";
import { capture } from "../exec";

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
export async function sshRun(
  target: SshTarget,
  command: string,
  options: { input?: string | Buffer; timeoutMs: number; signal?: AbortSignal },
): Promise<SshResult> {
  const started = Date.now();
  if (options.signal?.aborted) throw new Error("stopped before ssh ran");
  const result = await capture("sshpass", sshArgs(target, command), {
    env: { ...process.env, SSHPASS: target.password },
    input: options.input,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  });
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    durationMs: Date.now() - started,
    timedOut: result.timedOut,
  };
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
