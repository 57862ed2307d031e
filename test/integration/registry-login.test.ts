import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DOCKER_CONFIG_KIND, resourcePerformers } from "../../lib/runner/docker-resources";
import { PROJECT_ROOT, tempDir } from "../helpers";
import { LOGIN_REGISTRY, LOGIN_USER, loginRegistryDigest, startLoginRegistry } from "../login-registry";

/** The docker config directories of pushes this process left in the temp dir. */
function leftConfigDirs(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith(`${DOCKER_CONFIG_KIND}~${process.pid}~`));
}

describe("pushes to a registry that requires a login (real dockerd, docker-registry with htpasswd)", function () {
  const repository = `publish-login-${process.pid}`;
  const source = `antidote-images/${repository}:source`;
  const target = `${LOGIN_REGISTRY}/${repository}:${"c".repeat(64)}`;
  let password: string;
  const push = (login: { username: string; password: string }) =>
    resourcePerformers["docker:index/registryImage:RegistryImage"].perform({
      name: target,
      keepRemotely: true,
      triggers: { key: "c".repeat(64) },
      authConfig: { address: `http://${LOGIN_REGISTRY}`, ...login },
    });

  before(async function () {
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-dockerd.sh")], { stdio: "inherit" });
    password = startLoginRegistry();
    // A one-file image of its own, new at every run, so the push uploads.
    const dir = tempDir("publish-login");
    fs.writeFileSync(path.join(dir, "run"), `${process.pid} ${Date.now()}\n`);
    execFileSync("sh", ["-c", `tar -C "${dir}" -c run | docker import - "${source}"`], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    fs.rmSync(dir, { recursive: true, force: true });
    await resourcePerformers["docker:index/tag:Tag"].perform({ sourceImage: source, targetImage: target });
  });
  after(function () {
    spawnSync("docker", ["image", "rm", "--force", source, target], { stdio: "ignore" });
  });

  it("refuses a wrong password, naming the registry and the user, never a password", async function () {
    const wrong = `not-${password}`;
    await assert.rejects(
      () => push({ username: LOGIN_USER, password: wrong }),
      (err: Error) => {
        assert.match(err.message, /docker login 127\.0\.0\.1:5443 as antidote-test: .*401 Unauthorized/);
        assert.ok(!err.message.includes(wrong) && !err.message.includes(password), err.message);
        return true;
      },
    );
    assert.strictEqual(
      loginRegistryDigest(password, repository, "c".repeat(64)),
      undefined,
      "nothing pushed",
    );
    assert.deepStrictEqual(leftConfigDirs(), [], "the login's config directory is removed after a failure");
  });

  it("pushes with the right login; the login stays out of the user's docker config and is removed", async function () {
    const userConfig = path.join(os.homedir(), ".docker", "config.json");
    const before = fs.existsSync(userConfig) ? fs.readFileSync(userConfig, "utf8") : undefined;
    const pushed = await push({ username: LOGIN_USER, password });
    assert.strictEqual(pushed.changed, true);
    assert.strictEqual(
      loginRegistryDigest(password, repository, "c".repeat(64)),
      pushed.outputs.sha256Digest,
    );
    const after = fs.existsSync(userConfig) ? fs.readFileSync(userConfig, "utf8") : undefined;
    assert.strictEqual(after, before, "docker login wrote into a private config, not ~/.docker");
    assert.deepStrictEqual(leftConfigDirs(), []);
    // The key tag is there now: a second push looks it up with the login and uploads nothing.
    const again = await push({ username: LOGIN_USER, password });
    assert.strictEqual(again.changed, false);
    assert.strictEqual(again.outputs.sha256Digest, pushed.outputs.sha256Digest);
  });
});
