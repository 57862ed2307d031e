import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { bootTestArgsFromMetadata } from "../../lib/components/boot-test";
import { checkMetadata, loadMetadata } from "../../lib/metadata/metadata";
import { tempDir } from "../helpers";

describe("image metadata", () => {
  const check = (doc: unknown) => checkMetadata(doc, "images/frr/metadata.yaml", "frr");

  it("fills in the defaults of a minimal description", () => {
    assert.deepStrictEqual(check({ name: "frr", description: "Routing." }), {
      name: "frr",
      description: "Routing.",
      capabilities: ["ssh"],
      credentials: { username: "antidote", password: "antidotepassword" },
      ports: [{ port: 22, protocol: "tcp", name: "ssh" }],
      interfaces: [{ name: "eth0", purpose: "management" }],
      resources: { memoryMiB: 512, cpus: 1 },
      services: [],
    });
  });

  it("names the file, the field, what was expected and what it got", () => {
    const bad = {
      name: "frr",
      description: "Routing.",
      ports: [
        { port: 22, name: "ssh" },
        { port: 70000, name: "netconf" },
      ],
      interfaces: [{ name: "eth0", purpose: "mgmt" }],
      resources: { memoryMiB: "lots" },
      colour: "blue",
    };
    assert.throws(
      () => check(bad),
      (err: Error) => {
        assert.match(err.message, /^images\/frr\/metadata.yaml: /);
        assert.match(err.message, /ports\[1\]\.port: expected at most 65535, got 70000/);
        assert.match(
          err.message,
          /interfaces\[0\]\.purpose: expected one of "management", "data", got "mgmt"/,
        );
        assert.match(err.message, /resources\.memoryMiB: expected a whole number, got "lots"/);
        assert.match(err.message, /colour: unknown field \(expected one of name, description, maintainer/);
        return true;
      },
    );
    assert.throws(() => check({ name: "frr" }), /description: required, but missing/);
  });

  it("checks what a schema cannot: the folder's name, the management NIC first, no repeats", () => {
    assert.throws(
      () => check({ name: "ffr", description: "x" }),
      /name: expected the folder's name 'frr', got 'ffr'/,
    );
    assert.throws(
      () => check({ name: "frr", description: "x", interfaces: [{ name: "eth1", purpose: "data" }] }),
      /interfaces\[0\]\.purpose: expected 'management'/,
    );
    assert.throws(
      () =>
        check({
          name: "frr",
          description: "x",
          interfaces: [
            { name: "eth0", purpose: "management" },
            { name: "eth0", purpose: "data" },
          ],
        }),
      /interfaces: expected each once, got eth0 twice/,
    );
    assert.throws(
      () => check({ name: "frr", description: "x", base: "frr" }),
      /base: an image cannot build on itself/,
    );
  });

  it("adds declared ports to ssh (22/tcp, which the health check logs in over) instead of replacing it", () => {
    const ports = (declared: unknown) => check({ name: "frr", description: "x", ports: declared }).ports;
    assert.deepStrictEqual(ports([{ port: 80, name: "http" }]), [
      { port: 22, protocol: "tcp", name: "ssh" },
      { port: 80, protocol: "tcp", name: "http" },
    ]);
    assert.deepStrictEqual(
      ports([
        { port: 830, name: "netconf" },
        { port: 22, name: "ssh", description: "the login" },
      ]),
      [
        { port: 830, protocol: "tcp", name: "netconf" },
        { port: 22, protocol: "tcp", name: "ssh", description: "the login" },
      ],
      "an author's own 22/tcp entry is kept as written, not doubled",
    );
    assert.deepStrictEqual(ports([{ port: 22, protocol: "udp", name: "odd" }]), [
      { port: 22, protocol: "tcp", name: "ssh" },
      { port: 22, protocol: "udp", name: "odd" },
    ]);
  });

  it("says which fields a ports entry takes when one is malformed", () => {
    const fields = /port, name \(and optionally protocol, description\)/;
    assert.throws(
      () => check({ name: "frr", description: "x", ports: [80] }),
      (err: Error) => {
        assert.match(err.message, /ports\[0\]: expected an object with fields port, name/);
        assert.match(err.message, fields);
        return true;
      },
    );
    assert.throws(() => check({ name: "frr", description: "x", ports: ["80/tcp"] }), fields);
    assert.throws(
      () => check({ name: "frr", description: "x", ports: [{ port: 80 }] }),
      /ports\[0\]\.name: required, but missing \(an entry takes port, name \(and optionally protocol, description\)\)/,
    );
    assert.throws(
      () => check({ name: "frr", description: "x", ports: 80 }),
      /ports: expected a list, got 80/,
    );
  });

  it("declares a vendor image's boot budget and KVM need, which its boot test takes", () => {
    const vendor = check({ name: "frr", description: "A vendor system.", boot: { timeoutSeconds: 600 } });
    assert.deepStrictEqual(vendor.boot, { timeoutSeconds: 600, requiresKvm: false });
    assert.deepStrictEqual(
      bootTestArgsFromMetadata({ ...vendor, boot: { timeoutSeconds: 600, requiresKvm: true } }),
      {
        memoryMiB: 512,
        cpus: 1,
        nics: 1,
        services: [],
        user: "antidote",
        password: "antidotepassword",
        sshTimeoutSeconds: 600,
        accelerator: "kvm",
      },
    );
    // Without a boot section the boot test keeps its own defaults (and existing images their keys).
    const plain = bootTestArgsFromMetadata(check({ name: "frr", description: "Routing." }));
    assert.strictEqual(plain.sshTimeoutSeconds, undefined);
    assert.strictEqual(plain.accelerator, undefined);
    assert.throws(
      () => check({ name: "frr", description: "x", boot: { timeoutSeconds: 5, kvm: true } }),
      (err: Error) => {
        assert.match(err.message, /boot\.timeoutSeconds: expected at least 10, got 5/);
        assert.match(err.message, /boot\.kvm: unknown field \(expected one of timeoutSeconds, requiresKvm\)/);
        return true;
      },
    );
  });

  it("reports a missing or unparsable file by path", () => {
    const dir = path.join(tempDir("meta"), "utility");
    fs.mkdirSync(dir);
    assert.throws(
      () => loadMetadata(dir),
      /utility\/metadata.yaml: missing: every image folder needs a metadata.yaml/,
    );
    fs.writeFileSync(path.join(dir, "metadata.yaml"), "name: [unclosed\n");
    assert.throws(() => loadMetadata(dir), /utility\/metadata.yaml: not valid YAML/);
    fs.writeFileSync(path.join(dir, "metadata.yaml"), "name: utility\ndescription: Tools.\n");
    assert.strictEqual(loadMetadata(dir).name, "utility");
  });
});
