import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { credentialsDir } from "../../lib/runner/credentials-dir";
import { processStartTime } from "../../lib/store/lock";

describe("credentials directories of a run (docker's login config, ssh keys)", () => {
  const kind = `antidote-test-credentials-${process.pid}`;
  const made = (pid: number, started: string) => {
    const dir = path.join(os.tmpdir(), `${kind}~${pid}~${started}~x${Math.random().toString(16).slice(2)}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "config.json"), '{"auths":{}}');
    return dir;
  };
  after(() => {
    for (const entry of fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith(`${kind}~`)))
      fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
  });

  it("is private to this user, and removed when done", () => {
    const { dir, remove } = credentialsDir(kind);
    assert.strictEqual(fs.statSync(dir).mode & 0o777, 0o700);
    remove();
    assert.ok(!fs.existsSync(dir));
  });

  it("reclaims what a dead run left (its process gone, or its pid reused), and keeps a running one's", () => {
    const exited = spawnSync("true").pid;
    const gone = made(exited, "12345");
    const reused = made(process.pid, "1");
    const running = made(process.pid, processStartTime(process.pid)!);
    const { dir, remove } = credentialsDir(kind);
    assert.ok(!fs.existsSync(gone), "a dead owner's directory is removed");
    assert.ok(!fs.existsSync(reused), "a recycled pid is told apart by its start time");
    assert.ok(fs.existsSync(running), "a running owner's directory stays");
    remove();
    assert.ok(fs.existsSync(running));
    assert.ok(!fs.existsSync(dir));
  });
});
