import { createHash } from "crypto";

/** A machine steps run on over SSH (stack config `antidote-images:buildHosts`, one entry per host). */
export interface BuildHost {
  /** Name in messages and assignment. @default `<host>:<port>` */
  name: string;
  /** Address the SSH client dials. */
  host: string;
  /** SSH port. @default 22 */
  port: number;
  /** Login user. */
  user: string;
  /** The host's public key as `ssh-keyscan` prints it without the host name: `ssh-ed25519 AAAA…`. */
  hostKey: string;
  /** Steps it runs at once; also its weight in assignment. @default 1 */
  capacity: number;
  /** What it offers beyond the basics, such as `kvm`; a step that needs one runs only on hosts that have it. @default [] */
  capabilities: string[];
  /** The project checkout on the host, at the same git version as this one. @default /opt/antidote-images */
  dir: string;
  /** Its local artifact store (the shared store's cache). @default the host's own default (`$ANTIDOTE_STORE`, …) */
  store?: string;
  /** Seconds a connection attempt may take before the host counts as unreachable. @default 15 */
  dialTimeout: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HOST_KEY = /^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}$/;

/** Validates `antidote-images:buildHosts` (already parsed from YAML/JSON), naming the field and what was expected. */
export function parseBuildHosts(raw: unknown): BuildHost[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw))
    throw new Error(`buildHosts: expected a list of hosts, got ${JSON.stringify(raw)}`);
  const hosts = raw.map((entry: unknown, i): BuildHost => {
    const field = (name: string) => `buildHosts[${i}].${name}`;
    const fail = (name: string, expected: string, got: unknown): never => {
      throw new Error(
        `${field(name)}: expected ${expected}, got ${got === undefined ? "nothing" : JSON.stringify(got)}`,
      );
    };
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new Error(`buildHosts[${i}]: expected an object with host, user and hostKey`);
    }
    const e = entry as Record<string, unknown>;
    if (typeof e.host !== "string" || !/^[A-Za-z0-9.:-]+$/.test(e.host))
      fail("host", "a host name or address", e.host);
    const port = e.port ?? 22;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      fail("port", "a port number (1-65535)", port);
    }
    if (typeof e.user !== "string" || !/^[a-z_][a-z0-9_-]*$/.test(e.user))
      fail("user", "a user name", e.user);
    if (typeof e.hostKey !== "string" || !HOST_KEY.test(e.hostKey.trim())) {
      fail(
        "hostKey",
        "the host's public key as 'ssh-ed25519 AAAA…' (ssh-keyscan output without the name)",
        e.hostKey,
      );
    }
    const capacity = e.capacity ?? 1;
    if (typeof capacity !== "number" || !Number.isInteger(capacity) || capacity < 1) {
      fail("capacity", "a whole number of steps at once (1 or more)", capacity);
    }
    const capabilities = e.capabilities ?? [];
    if (!Array.isArray(capabilities) || !capabilities.every((c) => typeof c === "string" && NAME.test(c))) {
      fail("capabilities", "a list of names such as [kvm]", capabilities);
    }
    const dir = e.dir ?? "/opt/antidote-images";
    if (typeof dir !== "string" || !dir.startsWith("/") || /\n/.test(dir))
      fail("dir", "an absolute path", dir);
    if (
      e.store !== undefined &&
      (typeof e.store !== "string" || !e.store.startsWith("/") || /\n/.test(e.store))
    ) {
      fail("store", "an absolute path", e.store);
    }
    const dialTimeout = e.dialTimeout ?? 15;
    if (typeof dialTimeout !== "number" || !(dialTimeout > 0))
      fail("dialTimeout", "seconds (more than 0)", dialTimeout);
    const name = e.name ?? `${e.host as string}:${port as number}`;
    if (typeof name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9.:_-]*$/.test(name))
      fail("name", "a plain name", name);
    return {
      name: name as string,
      host: e.host as string,
      port: port as number,
      user: e.user as string,
      hostKey: (e.hostKey as string).trim(),
      capacity: capacity as number,
      capabilities: capabilities as string[],
      dir: dir as string,
      store: e.store as string | undefined,
      dialTimeout: dialTimeout as number,
    };
  });
  const seen = new Set<string>();
  for (const host of hosts) {
    if (seen.has(host.name))
      throw new Error(`buildHosts: two hosts are named '${host.name}'; names must differ`);
    seen.add(host.name);
  }
  return hosts;
}

/**
 * The host a step runs on: weighted rendezvous hashing of the step's key over the hosts that have every capability
 * the step needs. It depends only on the key and the host list, so a preview never reshuffles work, and adding or
 * removing a host moves only the steps that hash to it.
 */
export function assignHost(
  key: string,
  hosts: BuildHost[],
  needs: readonly string[],
  step: string,
): BuildHost {
  const capable = hosts.filter((h) => needs.every((n) => h.capabilities.includes(n)));
  if (capable.length === 0) {
    throw new Error(
      `${step}: no build host has ${needs.join(", ")}, which the step needs; ` +
        `hosts: ${hosts.map((h) => `${h.name} [${h.capabilities.join(", ")}]`).join("; ")}`,
    );
  }
  let best = capable[0];
  let bestScore = -Infinity;
  for (const host of capable) {
    const digest = createHash("sha256").update(`${key}\0${host.name}`).digest();
    // A uniform number in (0, 1) from 52 bits of the hash; -w/ln(u) picks each host in proportion to its weight w.
    const u = (Number(digest.readBigUInt64BE() >> 12n) + 0.5) / 2 ** 52;
    const score = -host.capacity / Math.log(u);
    if (score > bestScore) [best, bestScore] = [host, score];
  }
  return best;
}

/** Quotes a value for a POSIX shell. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command a remote step command runs on its host: the project's CLI in the host's checkout, with its store and
 * the shared store set on the command line (sshd passes no environment by default).
 */
export function remoteStepCommand(host: BuildHost, sharedStore: string | undefined): string {
  const env = [
    ...(host.store ? [`ANTIDOTE_STORE=${shellQuote(host.store)}`] : []),
    ...(sharedStore ? [`ANTIDOTE_SHARED_STORE=${shellQuote(sharedStore)}`] : []),
  ];
  return `cd ${shellQuote(host.dir)} && ${[...env, "exec node bin/antidote-images.js step"].join(" ")}`;
}
