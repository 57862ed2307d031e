import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
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
