import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Rootfs, rootfsInputs } from "../../lib/components/rootfs";
import { parseRootfsArgs } from "../../lib/steps/rootfs";
import { imagePasswordHash, isCryptHash, sha512Crypt } from "../../lib/steps/rootfs/password";
import { requireAnsible } from "../../lib/steps/rootfs/playbook";
import { shareFiles } from "../../lib/steps/rootfs/tree";
import { StepSpec } from "../../lib/steps/step";
import { tempDir } from "../helpers";
import { useMocks, valueOf } from "../mocks";

describe("sha512-crypt", () => {
  it("matches the reference implementation's vectors", () => {
    // From Ulrich Drepper's specification of SHA-crypt.
    assert.strictEqual(
      sha512Crypt("Hello world!", "saltstring"),
      "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    );
    assert.strictEqual(
      sha512Crypt("Hello world!", "saltstringsaltst", 10000),
      "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    );
    // `openssl passwd -6 -salt abcdefghijklmnop antidotepassword`
    assert.strictEqual(
      sha512Crypt("antidotepassword", "abcdefghijklmnop"),
      "$6$abcdefghijklmnop$UH2lfTaehOUEqaYa9n/mkngpREG7KAr.HZ0Y5mPq7e4sesQYBWNbyX8OsqU/ZVP6qB4yqsiUgX/xcmcbKRQ/x1",
    );
  });

  it("derives a stable salt per image and user, so keys are stable and images differ", () => {
    const a = imagePasswordHash("antidotepassword", "frr", "antidote");
    assert.strictEqual(a, imagePasswordHash("antidotepassword", "frr", "antidote"));
    assert.notStrictEqual(a, imagePasswordHash("antidotepassword", "utility", "antidote"));
    assert.ok(isCryptHash(a));
    assert.ok(!isCryptHash("antidotepassword"));
  });
});

describe("Rootfs arguments", () => {
  let dir: string;
  let install: string;
  beforeEach(async () => {
    await useMocks();
    dir = tempDir("rootfs-unit");
    install = path.join(dir, "install.sh");
    fs.writeFileSync(install, "#!/bin/sh\necho hi\n");
  });

  it("normalizes to the documented defaults", () => {
    const { image, args, files } = rootfsInputs("debian-base");
    assert.strictEqual(image, "debian-base");
    assert.deepStrictEqual(parseRootfsArgs(args as never), args);
    assert.strictEqual(args.suite, "bookworm");
    assert.strictEqual(args.mirror, "http://deb.debian.org/debian");
    assert.strictEqual(args.hostname, "debian-base");
    assert.strictEqual(args.user.name, "antidote");
    assert.strictEqual(
      args.user.passwordHash,
      imagePasswordHash("antidotepassword", "debian-base", "antidote"),
    );
    assert.deepStrictEqual(Object.keys(files).sort(), [
      "rootfs/chroot.sh",
      "rootfs/configure.sh",
      "rootfs/finalize.sh",
      "rootfs/user.sh",
      "stage3/antidote-configure",
      "stage3/antidote-configure.service",
      "stage3/antidote-resume",
      "stage3/antidote-resume.service",
    ]);
  });

  const cases: [string, () => unknown, RegExp][] = [
    [
      "an unknown suite",
      () => new Rootfs("lab-rootfs", { image: "lab", suite: "buster" }),
      /^Error: lab: lab-rootfs: bad argument suite: expected a debian release this step knows \(bookworm, trixie\), got "buster"$/,
    ],
    [
      "a missing install.sh",
      () => new Rootfs("lab-rootfs", { image: "lab", install: "/nonexistent/install.sh" }),
      /^Error: lab: lab-rootfs: bad argument install: expected an existing file, got "\/nonexistent\/install.sh"$/,
    ],
    [
      "a bad file mode",
      () =>
        new Rootfs("lab-rootfs", {
          image: "lab",
          files: [{ source: install, path: "/etc/x", mode: "0999" }],
        }),
      /^Error: lab: lab-rootfs: bad argument files\[0\]\.mode: expected an octal mode like "0644", got "0999"$/,
    ],
    [
      "a symbolic file mode",
      () =>
        new Rootfs("lab-rootfs", {
          image: "lab",
          files: [{ source: install, path: "/etc/x", mode: "rw-r--r--" }],
        }),
      /bad argument files\[0\]\.mode: /,
    ],
    [
      "a relative file path",
      () => new Rootfs("lab-rootfs", { image: "lab", files: [{ source: install, path: "etc/x" }] }),
      /^Error: lab: lab-rootfs: bad argument files\[0\]\.path: expected an absolute file path/,
    ],
    [
      "a bad package name",
      () => new Rootfs("lab-rootfs", { image: "lab", packages: ["jq", "Not A Package"] }),
      /^Error: lab: lab-rootfs: bad argument packages: expected package names, got "Not A Package"$/,
    ],
    [
      "a bad group name",
      () => new Rootfs("lab-rootfs", { image: "lab", groups: ["netshow", "Net Edit"] }),
      /^Error: lab: lab-rootfs: bad argument user\.groups: expected group names like 'netshow', got "Net Edit"$/,
    ],
    [
      "a lesson service that is no unit name",
      () => new Rootfs("lab-rootfs", { image: "lab", lessonServices: ["frr", "bird 2"] }),
      /^Error: lab: lab-rootfs: bad argument lessonServices: expected systemd unit names like 'frr\.service', got "bird 2\.service"$/,
    ],
    [
      "a bad user name",
      () => new Rootfs("lab-rootfs", { image: "lab", user: "root:0" }),
      /^Error: lab: lab-rootfs: bad argument user\.name: /,
    ],
    [
      "an image name that is no host name",
      () => new Rootfs("lab-rootfs", { image: "My_Lab" }),
      /^Error: My_Lab: lab-rootfs: bad argument hostname: expected a host name/,
    ],
    [
      "a package list given as one string (not spread into its characters)",
      () => new Rootfs("lab-rootfs", { image: "lab", packages: "jq" as never }),
      /^Error: lab: lab-rootfs: bad argument packages: expected a list of strings, got "jq"$/,
    ],
    [
      "a group list given as one string",
      () => new Rootfs("lab-rootfs", { image: "lab", groups: "frrvty" as never }),
      /^Error: lab: lab-rootfs: bad argument groups: expected a list of strings, got "frrvty"$/,
    ],
    [
      "a post script given as one path",
      () => new Rootfs("lab-rootfs", { image: "lab", post: install as never }),
      /^Error: lab: lab-rootfs: bad argument post: expected a list of strings, got ".*install.sh"$/,
    ],
    [
      "one file where a list of files is expected",
      () => new Rootfs("lab-rootfs", { image: "lab", files: { source: install, path: "/etc/x" } as never }),
      /^Error: lab: lab-rootfs: bad argument files: expected a list, got \{"source":/,
    ],
    [
      "a missing pre script",
      () => new Rootfs("lab-rootfs", { image: "lab", pre: [install, path.join(dir, "nope.sh")] }),
      /^Error: lab: lab-rootfs: bad argument pre\[1\]: expected an existing file/,
    ],
    [
      "a missing playbook",
      () => new Rootfs("lab-rootfs", { image: "lab", playbook: path.join(dir, "ansible", "site.yml") }),
      /^Error: lab: lab-rootfs: bad argument playbook: expected an existing file, got ".*\/ansible\/site.yml"$/,
    ],
    [
      "a playbook in the image's own folder (all of which would be its input)",
      () => {
        fs.writeFileSync(path.join(dir, "metadata.yaml"), "name: lab\n");
        fs.writeFileSync(path.join(dir, "site.yml"), "- hosts: all\n");
        return new Rootfs("lab-rootfs", { image: "lab", playbook: path.join(dir, "site.yml") });
      },
      /^Error: lab: lab-rootfs: bad argument playbook: expected a playbook in a folder of its own \(every file of its folder is its input\), not next to metadata.yaml, got ".*site.yml"$/,
    ],
  ];
  for (const [what, build, message] of cases) {
    it(`rejects ${what} while the program runs, naming the image and the field`, () => {
      assert.throws(build, message);
    });
  }

  it("rejects a derived image on another suite or mirror than its base", () => {
    const base = new Rootfs("base-rootfs", { image: "base" });
    assert.throws(
      () => new Rootfs("frr-rootfs", { image: "frr", base, suite: "trixie" }),
      /^Error: frr: frr-rootfs: bad argument suite: expected the base's "bookworm" \(or nothing\), got "trixie"$/,
    );
    assert.throws(
      () => new Rootfs("frr-rootfs", { image: "frr", base, mirror: "http://mirror.example/debian" }),
      /^Error: frr: frr-rootfs: bad argument mirror: expected the base's "http:\/\/deb.debian.org\/debian"/,
    );
    assert.doesNotThrow(
      () => new Rootfs("ok-rootfs", { image: "ok", base, mirror: "http://deb.debian.org/debian/" }),
    );
  });

  it("keys every input: install.sh's contents, the password, the base; and nothing else", () => {
    const key = (args: Parameters<typeof rootfsInputs>[1] = {}) =>
      new Rootfs(`r${Math.random()}`, { image: "lab", install, ...args }).key;
    const before = key();
    assert.strictEqual(key(), before, "same inputs, same key");
    assert.notStrictEqual(key({ password: "other" }), before);
    assert.notStrictEqual(key({ packages: ["jq"] }), before);
    assert.strictEqual(key({ packages: [] }), before, "defaults are normalized");
    fs.appendFileSync(install, "echo more\n");
    assert.notStrictEqual(key(), before, "install.sh changed");
  });

  it("keys a playbook by every file of its folder, and is null without one", () => {
    const folder = path.join(dir, "ansible");
    fs.mkdirSync(path.join(folder, "roles", "r", "tasks"), { recursive: true });
    const playbook = path.join(folder, "site.yml");
    fs.writeFileSync(playbook, "- hosts: all\n  roles: [r]\n");
    fs.writeFileSync(path.join(folder, "roles", "r", "tasks", "main.yml"), "- ansible.builtin.ping:\n");
    const { args, files } = rootfsInputs("lab", { playbook });
    assert.strictEqual(args.playbook, "playbook/site.yml");
    assert.deepStrictEqual(
      Object.keys(files).filter((role) => role.startsWith("playbook/")),
      ["playbook/roles/r/tasks/main.yml", "playbook/site.yml"],
    );
    const without = rootfsInputs("lab").args;
    assert.strictEqual(without.playbook, null, "null without a playbook");
    assert.deepStrictEqual(parseRootfsArgs(args as never), args);

    const key = () => new Rootfs(`r${Math.random()}`, { image: "lab", playbook }).key;
    const before = key();
    fs.appendFileSync(path.join(folder, "roles", "r", "tasks", "main.yml"), "- ansible.builtin.ping:\n");
    assert.notStrictEqual(key(), before, "a role's task file changed");
    const afterRole = key();
    fs.writeFileSync(path.join(folder, "group_vars.yml"), "x: 1\n");
    assert.notStrictEqual(key(), afterRole, "a variables file was added");
  });

  it("refuses a playbook on a build host without ansible-playbook, naming the package", () => {
    assert.throws(
      () => requireAnsible({ PATH: dir }),
      /ansible-playbook is not installed on this build host \(Debian's package 'ansible', which scripts\/setup.sh installs\)/,
    );
  });

  it("gives the step the hash, never the plaintext, and a derived image its base as parent", async () => {
    const base = new Rootfs("base-rootfs", { image: "base", password: "s3cret-Pa55", groups: ["netshow"] });
    const frr = new Rootfs("frr-rootfs", { image: "frr", base, groups: ["frrvty"], install });
    const spec = JSON.parse((await valueOf(base.command.stdin)) as string) as StepSpec;
    assert.ok(!JSON.stringify(spec).includes("s3cret-Pa55"));
    assert.ok(isCryptHash((spec.args as { user: { passwordHash: string } }).user.passwordHash));

    const derived = JSON.parse((await valueOf(frr.command.stdin)) as string) as StepSpec;
    assert.deepStrictEqual(derived.parents, { base: base.key });
    assert.deepStrictEqual(frr.stepArgs.user.groups, ["frrvty", "netshow"], "the base user's groups stay");
    assert.deepStrictEqual(base.stepArgs.lessonServices, [], "no lesson services by default");
    const router = new Rootfs("router-rootfs", { image: "router", base, lessonServices: ["ssh.service"] });
    const bgp = new Rootfs("bgp-rootfs", {
      image: "bgp",
      base: router,
      lessonServices: ["frr", "gobgpd.service"],
    });
    assert.deepStrictEqual(
      bgp.stepArgs.lessonServices,
      ["frr.service", "gobgpd.service", "ssh.service"],
      "a bare name is a .service, the base's stay, sorted",
    );
    assert.strictEqual(frr.stepArgs.suite, "bookworm");
  });
});

describe("package cache sharing", () => {
  it("hard-links what the target lacks and leaves what it has", () => {
    const dir = tempDir("rootfs-share");
    const [from, to] = [path.join(dir, "from"), path.join(dir, "to")];
    fs.mkdirSync(from);
    fs.mkdirSync(to);
    fs.writeFileSync(path.join(from, "a_1_amd64.deb"), "a");
    fs.writeFileSync(path.join(from, "b_1_amd64.deb"), "b");
    fs.writeFileSync(path.join(from, "lock"), "");
    fs.writeFileSync(path.join(to, "b_1_amd64.deb"), "b");
    assert.strictEqual(shareFiles(from, to, ".deb"), 1);
    assert.deepStrictEqual(fs.readdirSync(to).sort(), ["a_1_amd64.deb", "b_1_amd64.deb"]);
    assert.strictEqual(
      fs.statSync(path.join(to, "a_1_amd64.deb")).ino,
      fs.statSync(path.join(from, "a_1_amd64.deb")).ino,
    );
  });
});
