import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { StepFailure } from "../../lib/steps/run";
import { PROJECT_ROOT, rootfsBuildMounts, sharedTestStore, tempDir } from "../helpers";
import { buildRootfs, BuiltRootfs, debianBase } from "../fixtures/rootfs";

function readEntry(tarball: string, file: string): string {
  return execFileSync("tar", ["--zstd", "-xOf", tarball, `./${file}`]).toString();
}

describe("Rootfs with an Ansible playbook (real ansible-playbook, chroot connection)", function () {
  let base: BuiltRootfs;

  before(async () => {
    base = await debianBase();
  });

  it("applies utility's example playbook: its role's template, owner, mode and file capabilities", async () => {
    // The packages the playbook works on (and python3 for its modules), not utility's whole list: a cheap build.
    const built = await buildRootfs(
      sharedTestStore(),
      "utility",
      {
        packages: ["python3", "tcpdump", "libcap2-bin"],
        groups: ["pcap"],
        playbook: path.join(PROJECT_ROOT, "images/utility/ansible/site.yml"),
      },
      { base },
    );
    const config = readEntry(built.primary, "etc/ansible/ansible.cfg");
    assert.match(config, /^\[defaults\]$/m);
    assert.match(config, /^host_key_checking = False$/m);
    assert.match(config, /^interpreter_python = auto_silent$/m);

    const group = readEntry(built.primary, "etc/group")
      .split("\n")
      .find((line) => line.startsWith("pcap:"));
    assert.ok(group, "the pcap group exists");
    const gid = group.split(":")[2];
    const listing = execFileSync("tar", ["--zstd", "-tvf", built.primary, "./usr/bin/tcpdump"]).toString();
    assert.match(listing, new RegExp(`^-rwxr-x--- 0/${gid} `), listing);

    const unpacked = tempDir("playbook-tcpdump");
    execFileSync("tar", [
      "--zstd",
      "-xf",
      built.primary,
      "--xattrs",
      "--xattrs-include=security.capability",
      `--directory=${unpacked}`,
      "./usr/bin/tcpdump",
    ]);
    const caps = execFileSync("getcap", [path.join(unpacked, "usr/bin/tcpdump")]).toString();
    assert.match(caps, /cap_net_admin,cap_net_raw=eip/, caps);

    // Ansible's temporary files were in the tree's /run (a tmpfs), nothing of it is in the image.
    const entries = execFileSync("tar", ["--zstd", "-tf", built.primary], { maxBuffer: 64 << 20 }).toString();
    assert.doesNotMatch(entries, /\.ansible|ansible-tmp|AnsiballZ/);
  });

  it("fails naming the playbook, the task that failed and Ansible's message, and leaves no mount", async () => {
    const folder = path.join(tempDir("playbook-fail"), "ansible");
    fs.mkdirSync(folder);
    // raw needs no Python in the image: the base has none.
    fs.writeFileSync(
      path.join(folder, "site.yml"),
      [
        "- hosts: all",
        "  gather_facts: false",
        "  tasks:",
        "    - name: Read the banner",
        "      ansible.builtin.raw: cat /etc/motd",
        "    - name: Check the banner names the lab",
        "      ansible.builtin.raw: grep -q 'no such lab' /etc/motd",
        "    - name: Never reached",
        "      ansible.builtin.raw: touch /never",
        "",
      ].join("\n"),
    );
    const failure = await buildRootfs(
      sharedTestStore(),
      "vendor-playbook-fail",
      { playbook: path.join(folder, "site.yml") },
      { base },
    ).then(
      () => assert.fail("the build succeeded"),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof StepFailure, String(failure));
    assert.match(
      failure.message.split("\n")[0],
      /^vendor-playbook-fail: step vendor-playbook-fail \(rootfs\) failed: playbook site\.yml: task "Check the banner names the lab" failed: non-zero return code$/,
    );
    assert.ok(failure.log && fs.existsSync(failure.log), `the log is at ${failure.log}`);
    assert.match(fs.readFileSync(failure.log, "utf8"), /TASK \[Check the banner names the lab\]/);
    assert.deepStrictEqual(rootfsBuildMounts(), []);
  });
});
