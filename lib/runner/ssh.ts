import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

/** The inputs of a `command:remote:Command`'s connection that the runner uses. */
export interface RemoteConnection {
  host: string;
  /** @default 22 */
  port?: number;
  user?: string;
  /** Contents of the private key. */
  privateKey?: string;
  /** The host's public key (`ssh-ed25519 AAAA…`); the connection is refused when the host shows another. */
  hostKey?: string;
  /** Seconds a connection attempt may take. @default 15 */
  perDialTimeout?: number;
}

/** The alias the host key is recorded under, so one known-hosts file per host needs no host name or port. */
const HOST_KEY_ALIAS = "antidote-build-host";

/** `user@host:port`, for messages. */
export function describeConnection(connection: RemoteConnection): string {
  return `${connection.user ? `${connection.user}@` : ""}${connection.host}:${connection.port ?? 22}`;
}

/**
 * The OpenSSH client command line that runs `command` on the connection's host as the command provider would: batch
 * mode (never a prompt), only the configured host key accepted, the key from the connection, the dial timeout as
 * `ConnectTimeout`, no user or system ssh config. The key and known-hosts files are written into `secrets` (a private
 * directory the caller removes).
 */
export function sshArgv(connection: RemoteConnection, command: string, secrets: string): string[] {
  const id = createHash("sha256").update(JSON.stringify(connection)).digest("hex").slice(0, 16);
  const options = [
    "-F",
    "/dev/null",
    "-T",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    `ConnectTimeout=${connection.perDialTimeout ?? 15}`,
    "-o",
    "ConnectionAttempts=1",
    "-o",
    "ServerAliveInterval=30",
    "-o",
    "ServerAliveCountMax=4",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
  ];
  if (connection.hostKey) {
    const knownHosts = path.join(secrets, `${id}.known_hosts`);
    writeOnce(knownHosts, `${HOST_KEY_ALIAS} ${connection.hostKey.trim()}\n`);
    options.push(
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${knownHosts}`,
      "-o",
      `HostKeyAlias=${HOST_KEY_ALIAS}`,
    );
  } else {
    // Like the provider without hostKey: the host key is not checked.
    options.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null");
  }
  if (connection.privateKey) {
    const key = path.join(secrets, `${id}.key`);
    const text = connection.privateKey.endsWith("\n") ? connection.privateKey : `${connection.privateKey}\n`;
    writeOnce(key, text);
    options.push("-i", key, "-o", "IdentitiesOnly=yes");
  }
  if (connection.user) options.push("-l", connection.user);
  return ["ssh", ...options, "-p", String(connection.port ?? 22), connection.host, "--", command];
}

/**
 * Writes a secrets file whose name is derived from its content, once: steps on one host start concurrently, and a
 * file rewritten while another ssh reads it is a truncated key ("error in libcrypto"). Written aside, then renamed.
 */
function writeOnce(file: string, text: string): void {
  if (fs.existsSync(file)) return;
  const partial = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(partial, text, { mode: 0o600 });
  fs.renameSync(partial, file);
}
