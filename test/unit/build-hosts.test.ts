import * as assert from "assert";
import { assignHost, BuildHost, parseBuildHosts, remoteStepCommand } from "../../lib/remote/hosts";
import { sha256 } from "../../lib/keys";
import { useMocks } from "../mocks";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOm0XuGh5a3cX3HbS2C5m5FqfIqW8A7JbLQ2p6k1x0Yb";

function hosts(...entries: Partial<BuildHost>[]): BuildHost[] {
  return parseBuildHosts(
    entries.map((e, i) => ({ host: `10.0.0.${i + 1}`, user: "build", hostKey: KEY, ...e })),
  );
}

describe("build hosts", () => {
  it("fills the documented defaults", () => {
    assert.deepStrictEqual(parseBuildHosts([{ host: "b1", user: "build", hostKey: KEY }]), [
      {
        name: "b1:22",
        host: "b1",
        port: 22,
        user: "build",
        hostKey: KEY,
        capacity: 1,
        capabilities: [],
        dir: "/opt/antidote-images",
        store: undefined,
        dialTimeout: 15,
      },
    ]);
    assert.deepStrictEqual(parseBuildHosts(undefined), []);
  });

  it("names the field and what was expected for a bad entry", () => {
    const bad = (entry: object, message: RegExp) => assert.throws(() => parseBuildHosts([entry]), message);
    bad({ host: "b", user: "u", hostKey: KEY, port: 0 }, /buildHosts\[0\]\.port: expected a port number/);
    bad({ host: "b", user: "u" }, /buildHosts\[0\]\.hostKey: expected the host's public key/);
    bad(
      { host: "b", user: "u", hostKey: KEY, capacity: 0 },
      /buildHosts\[0\]\.capacity: expected a whole number/,
    );
    bad(
      { host: "b", user: "u", hostKey: KEY, dir: "rel" },
      /buildHosts\[0\]\.dir: expected an absolute path/,
    );
    assert.throws(
      () =>
        parseBuildHosts([
          { host: "a", user: "u", hostKey: KEY, name: "x" },
          { host: "b", user: "u", hostKey: KEY, name: "x" },
        ]),
      /two hosts are named 'x'/,
    );
  });

  it("assigns by key: stable, spread by capacity, only to capable hosts, and adding a host moves only what it takes", () => {
    const three = hosts({ name: "a" }, { name: "b", capacity: 2 }, { name: "c", capabilities: ["kvm"] });
    const keys = Array.from({ length: 400 }, (_, i) => sha256(`step-${i}`));
    const first = keys.map((k) => assignHost(k, three, [], "s").name);
    assert.deepStrictEqual(
      keys.map((k) => assignHost(k, three, [], "s").name),
      first,
      "same answer every time",
    );
    const count = (name: string) => first.filter((n) => n === name).length;
    assert.ok(
      count("b") > count("a") && count("b") > count("c"),
      `b has twice the weight: ${count("a")} ${count("b")} ${count("c")}`,
    );
    assert.ok(keys.every((k) => assignHost(k, three, ["kvm"], "s").name === "c"));
    const four = [...three, ...hosts({ name: "d", host: "10.0.0.9" })];
    const moved = keys.filter((k, i) => assignHost(k, four, [], "s").name !== first[i]);
    assert.ok(
      moved.every((k) => assignHost(k, four, [], "s").name === "d"),
      "only moves to the new host",
    );
    assert.throws(
      () => assignHost(keys[0], hosts({ name: "a" }), ["kvm"], "img: boot"),
      /img: boot: no build host has kvm/,
    );
  });

  it("runs the step in the host's checkout with its store and the shared store, quoted for the shell", () => {
    const [host] = hosts({ dir: "/srv/it's", store: "/var/cache/a" });
    assert.strictEqual(
      remoteStepCommand(host, "gs://b/p"),
      `cd '/srv/it'\\''s' && ANTIDOTE_STORE='/var/cache/a' ANTIDOTE_SHARED_STORE='gs://b/p' exec node bin/antidote-images.js step`,
    );
  });

  it("makes each step a remote.Command on its host when the stack has build hosts, the key a secret", async () => {
    const resources = await useMocks({
      "antidote-images:buildHosts": JSON.stringify([
        { name: "b1", host: "127.0.0.1", port: 2222, user: "build", hostKey: KEY },
      ]),
      "antidote-images:sharedStore": "gs://bucket/ci",
    });
    process.env.ANTIDOTE_BUILD_HOST_KEY = "PRIVATE KEY";
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after the mocks are in place
      const { Template } = require("../../lib") as typeof import("../../lib");
      new Template("remote-greeting", {
        template: "images/hello/greeting.txt",
        vars: { image: "x", platform: "y" },
        image: "x",
      });
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      delete process.env.ANTIDOTE_BUILD_HOST_KEY;
    }
    const cmd = resources.find((r) => r.name === "remote-greeting-build");
    assert.strictEqual(cmd?.type, "command:remote:Command");
    const connection = JSON.stringify(cmd?.inputs.connection);
    assert.match(connection, /"host":"127.0.0.1"/);
    assert.match(connection, /"dialErrorLimit":1/);
    assert.match(connection, /1b47061264138c4ac30d75fd1eb44270/, "the connection (with the key) is secret");
    assert.match(
      String(cmd?.inputs.create),
      /ANTIDOTE_SHARED_STORE='gs:\/\/bucket\/ci' exec node bin\/antidote-images.js step/,
    );
  });
});
