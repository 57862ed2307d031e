import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT } from "./helpers";

/** The registry that requires a login (`scripts/start-registry.sh --login`) and its test user. */
export const LOGIN_REGISTRY = "127.0.0.1:5443";
export const LOGIN_USER = "antidote-test";

/** Starts the login registry unless it runs, and returns its test password. */
export function startLoginRegistry(): string {
  execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-registry.sh"), "--login"], {
    stdio: "inherit",
  });
  const dir = process.env.ANTIDOTE_LOGIN_REGISTRY_DIR ?? "/var/lib/antidote-registry-login";
  return fs.readFileSync(path.join(dir, "password"), "utf8").trim();
}

/** The digest the login registry serves for `repository:tag`, read with the login; undefined for a 404. */
export function loginRegistryDigest(password: string, repository: string, tag: string): string | undefined {
  const run = spawnSync(
    "curl",
    [
      "-sSI",
      // The login goes to curl in a config on stdin, not on its command line.
      "-K",
      "-",
      "-H",
      "Accept: application/vnd.docker.distribution.manifest.v2+json",
      `http://${LOGIN_REGISTRY}/v2/${repository}/manifests/${tag}`,
    ],
    { input: `user = "${LOGIN_USER}:${password}"\n`, encoding: "utf8" },
  );
  assert.strictEqual(run.status, 0, run.stderr);
  if (/^HTTP\/\S+ 404/.test(run.stdout)) return undefined;
  assert.match(run.stdout, /^HTTP\/\S+ 200/, run.stdout);
  return /^docker-content-digest: (\S+)/im.exec(run.stdout)![1];
}
