import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { LocalStore } from "../../lib/store/local";
import { imagePasswordHash } from "../../lib/steps/rootfs/password";
import { StepFailure } from "../../lib/steps/run";
import { processesMatching, rootfsBuildMounts, sharedTestStore, tempDir } from "../helpers";
import { buildRootfs, BuiltRootfs, debianBase, rootfsSpec } from "../fixtures/rootfs";

/** `tar -tv` lines of a rootfs tarball, by path (without the leading `./`). */
function listing(tarball: string): Map<string, string> {
  const out = execFileSync("tar", ["--zstd", "-tvf", tarball], { maxBuffer: 64 << 20 }).toString();
  const entries = new Map<string, string>();
  for (const line of out.split("\n")) {
    const match = / \.\/(.*?)( -> .*)?$/.exec(line);
    if (match) entries.set(match[1].replace(/\/$/, ""), line);
  }
  return entries;
}

function readEntry(tarball: string, file: string): string {
  return execFileSync("tar", ["--zstd", "-xOf", tarball, `./${file}`]).toString();
}

function script(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode: 0o755 });
  return file;
}

describe("Rootfs step (real mmdebstrap)", function () {
  let base: BuiltRootfs;
  let files: Map<string, string>;

  before(async () => {
    base = await debianBase();
    files = listing(base.primary);
  });

  it("provisions debian-base: user, passwordless sudo, sshd accepting passwords, no host keys", () => {
    const passwd = readEntry(base.primary, "etc/passwd");
    assert.match(passwd, /^antidote:x:1000:1000::\/home\/antidote:\/bin\/bash$/m);
    const shadow = readEntry(base.primary, "etc/shadow");
    const hash = imagePasswordHash("antidotepassword", "debian-base", "antidote");
    assert.ok(shadow.includes(`antidote:${hash}:`), "the shadow entry holds the hash of antidotepassword");

    assert.strictEqual(
      readEntry(base.primary, "etc/sudoers.d/antidote-antidote"),
      "antidote ALL=(ALL:ALL) NOPASSWD: ALL\n",
    );
    assert.match(files.get("etc/sudoers.d/antidote-antidote") ?? "", /^-r--r----- 0\/0 /);

    assert.match(
      readEntry(base.primary, "etc/ssh/sshd_config.d/10-antidote.conf"),
      /^PasswordAuthentication yes$/m,
    );
    assert.deepStrictEqual(
      [...files.keys()].filter((f) => f.startsWith("etc/ssh/ssh_host_")),
      [],
    );
    assert.ok(
      files.has("etc/systemd/system/ssh.service.requires/ssh-hostkeys.service"),
      "host keys on first boot",
    );
    assert.match(
      readEntry(base.primary, "etc/systemd/system/ssh-hostkeys.service"),
      /^ExecStart=\/usr\/bin\/ssh-keygen -q -N "" -t ed25519 /m,
    );
    assert.ok(
      !files.has("etc/systemd/system/multi-user.target.wants/ssh-hostkey-rsa.service"),
      "no RSA key generated at boot",
    );
  });

  it("configures what a lab VM boots with: fstab, hostname, network, serial console, no outside access", () => {
    assert.match(readEntry(base.primary, "etc/fstab"), /^LABEL=antidote-root\t\/\text4\t/m);
    assert.strictEqual(readEntry(base.primary, "etc/hostname"), "debian-base\n");
    assert.match(readEntry(base.primary, "etc/hosts"), /^127\.0\.1\.1\tdebian-base$/m);
    assert.match(readEntry(base.primary, "etc/systemd/network/10-eth0.network"), /Name=eth0[\s\S]*DHCP=ipv4/);
    assert.match(files.get("etc/systemd/network/99-default.link") ?? "", /-> \/dev\/null$/);
    assert.ok(files.has("etc/systemd/system/multi-user.target.wants/systemd-networkd.service"));
    assert.ok(files.has("etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"));
    assert.ok(
      !files.has("etc/systemd/system/getty.target.wants/getty@tty1.service"),
      "no login on a display",
    );
    assert.match(
      readEntry(base.primary, "etc/systemd/journald.conf.d/10-antidote.conf"),
      /^Storage=volatile$/m,
    );
    // sshd does not wait for network.target (and the network services ordered before it), only for the host key
    // and the lesson's configuration.
    const sshUnit = readEntry(base.primary, "etc/systemd/system/ssh.service");
    assert.match(sshUnit, /^ExecStart=\/usr\/sbin\/sshd -D/m);
    assert.doesNotMatch(sshUnit, /network\.target/);
    // Nor does the unit that lets users log in: sshd starts after it (a banner, then a refused login, before).
    assert.doesNotMatch(
      readEntry(base.primary, "etc/systemd/system/systemd-user-sessions.service"),
      /network\.target/,
    );
    assert.match(
      readEntry(base.primary, "etc/systemd/system/ssh.service.d/10-antidote.conf"),
      /^After=systemd-user-sessions\.service$/m,
    );
    assert.match(
      readEntry(base.primary, "etc/systemd/system/ssh.service.d/10-antidote.conf"),
      /^ExecStartPre=$/m,
      "no separate sshd -t before sshd",
    );
    // Every boot of a fresh overlay is not an "update" (ConditionNeedsUpdate= units such as systemd-sysusers).
    for (const stamp of ["etc/.updated", "var/.updated"])
      assert.match(readEntry(base.primary, stamp), /^TIMESTAMP_NSEC=1704067200000000000$/m);
    for (const unit of ["apt-daily.timer", "apt-daily-upgrade.timer", "systemd-timesyncd.service"]) {
      assert.match(files.get(`etc/systemd/system/${unit}`) ?? "", /-> \/dev\/null$/, `${unit} masked`);
    }
    assert.doesNotMatch(readEntry(base.primary, "etc/resolv.conf"), /^nameserver/m);
    assert.match(files.get("etc/localtime") ?? "", /-> \/usr\/share\/zoneinfo\/Etc\/UTC$/);
  });

  it("leaves out what must differ per VM or build", () => {
    assert.strictEqual(readEntry(base.primary, "etc/machine-id"), "");
    for (const gone of ["var/lib/dbus/machine-id", "var/cache/ldconfig/aux-cache", "usr/sbin/policy-rc.d"]) {
      assert.ok(!files.has(gone), `${gone} is not in the image`);
    }
    const leftovers = [...files.keys()].filter(
      (f) => /^var\/(lib\/apt\/lists|cache\/apt\/archives)\/[^/]+$/.test(f) && !/\/(partial|lock)$/.test(f),
    );
    assert.deepStrictEqual(leftovers, []);
    assert.deepStrictEqual(
      [...files.keys()].filter((f) => f.startsWith("var/log/") && files.get(f)?.startsWith("-")),
      [],
    );
    assert.deepStrictEqual(
      [...files.keys()].filter((f) => f.startsWith("dev/")),
      [],
    );
  });

  it("records the package manifest and what later steps need to know", () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(base.location, "manifest.json"), "utf8"));
    assert.strictEqual(manifest.suite, "bookworm");
    assert.strictEqual(manifest.architecture, "amd64");
    const ssh = manifest.packages.find((p: { name: string }) => p.name === "openssh-server");
    assert.ok(ssh?.version && ssh.architecture === "amd64", "openssh-server is in the manifest");
    const names = manifest.packages.map((p: { name: string }) => p.name);
    assert.deepStrictEqual(names, [...names].sort());
    assert.strictEqual(base.outputs.packages, manifest.packages.length);

    const info = JSON.parse(fs.readFileSync(path.join(base.location, "image.json"), "utf8"));
    assert.deepStrictEqual(info, {
      hostname: "debian-base",
      user: "antidote",
      groups: [],
      rootLabel: "antidote-root",
      netNaming: "kernel",
    });
    assert.strictEqual(base.outputs.compressedSize, fs.statSync(base.primary).size);
    assert.ok((base.outputs.installedSizeKiB as number) > 50_000);
  });

  it("keeps the plaintext password out of the spec, the tarball and the log", () => {
    const spec = JSON.stringify(rootfsSpec("debian-base"));
    assert.ok(!spec.includes("antidotepassword"));
    const matches = execFileSync("sh", [
      "-c",
      `zstd -dc "$0" | grep -c -a antidotepassword || true`,
      base.primary,
    ]);
    assert.strictEqual(matches.toString().trim(), "0");
    assert.ok(!fs.readFileSync(base.log, "utf8").includes("antidotepassword"));
  });

  it("builds the same tarball, byte for byte, in two empty stores", async () => {
    const shared = sharedTestStore().cacheDir("packages-debian-amd64");
    const builds: BuiltRootfs[] = [];
    for (const n of [1, 2]) {
      const store = new LocalStore(tempDir(`rootfs-repro${n}`));
      // Downloads are shared (as between builds on one host); the archive must not move between the two builds.
      fs.rmSync(store.cacheDir("packages-debian-amd64"), { recursive: true });
      fs.symlinkSync(shared, path.join(store.location, "cache", "packages-debian-amd64"));
      builds.push(await buildRootfs(store, "debian-base"));
      assert.strictEqual(builds[builds.length - 1].cached, false);
    }
    assert.strictEqual(builds[0].key, base.key);
    assert.strictEqual(builds[0].sha256, builds[1].sha256);
  });

  describe("an image derived from debian-base", () => {
    let dir: string;
    before(() => {
      dir = tempDir("rootfs-derived");
    });

    it("unpacks the base instead of bootstrapping, then applies packages, groups, files and hooks in order", async () => {
      fs.writeFileSync(path.join(dir, "license.txt"), "licensed to the lab\n");
      const derived = await buildRootfs(
        sharedTestStore(),
        "derived-rootfs",
        {
          image: "derived",
          packages: ["jq"],
          groups: ["netshow", "netedit"],
          pre: [script(dir, "repo.sh", "#!/bin/sh\nset -e\necho pre >/etc/order\n")],
          install: script(
            dir,
            "install.sh",
            "#!/bin/bash\nset -euo pipefail\n" +
              "command -v jq\n" +
              "test -f /opt/vendor/license.txt\n" +
              "id -nG antidote | grep -qw netshow\n" +
              'echo "install $ANTIDOTE_IMAGE" >>/etc/order\n',
          ),
          post: [script(dir, "check.sh", "echo post >>/etc/order\n")],
          files: [
            {
              source: path.join(dir, "license.txt"),
              path: "/opt/vendor/license.txt",
              mode: "0640",
              owner: "antidote",
              group: "netshow",
            },
          ],
        },
        { base },
      );
      const log = fs.readFileSync(derived.log, "utf8");
      assert.doesNotMatch(log, /mmdebstrap/, "the base's bootstrap does not run again");
      assert.match(log, /unpacking base debian-base/);

      assert.strictEqual(readEntry(derived.primary, "etc/order"), "pre\ninstall derived\npost\n");
      assert.strictEqual(readEntry(derived.primary, "etc/hostname"), "derived\n");
      const entries = listing(derived.primary);
      const group = readEntry(derived.primary, "etc/group");
      const gid = /^netshow:x:(\d+):antidote$/m.exec(group)?.[1];
      assert.ok(gid, `netshow has antidote as member:\n${group}`);
      assert.match(group, /^netedit:x:\d+:antidote$/m);
      assert.match(entries.get("opt/vendor/license.txt") ?? "", new RegExp(`^-rw-r----- 1000/${gid} `));
      assert.ok(entries.has("usr/bin/jq"));

      const manifest = JSON.parse(fs.readFileSync(path.join(derived.location, "manifest.json"), "utf8"));
      assert.ok(manifest.packages.some((p: { name: string }) => p.name === "jq"));
      const info = JSON.parse(fs.readFileSync(path.join(derived.location, "image.json"), "utf8"));
      assert.deepStrictEqual(info.groups, ["netedit", "netshow"]);
      assert.deepStrictEqual(
        [...entries.keys()].filter((f) => f.startsWith("etc/ssh/ssh_host_")),
        [],
        "installing packages brings no host keys back",
      );
    });

    it("fails a broken install.sh naming it and its exit status, leaving no mount, process or artifact", async () => {
      const install = script(
        dir,
        "broken.sh",
        "#!/bin/sh\nsetsid sleep 4242 </dev/null >/dev/null 2>&1 &\necho failing on purpose\nexit 7\n",
      );
      const spec = rootfsSpec("broken-rootfs", { image: "broken", install }, base);
      await assert.rejects(
        buildRootfs(sharedTestStore(), "broken-rootfs", { image: "broken", install }, { base }),
        (err: unknown) => {
          assert.ok(err instanceof StepFailure, String(err));
          assert.match(
            err.message,
            /^broken: step broken-rootfs \(rootfs\) failed: install\.sh exited with status 7$/,
          );
          assert.deepStrictEqual(err.excerpt, ["failing on purpose"]);
          return true;
        },
      );
      assert.deepStrictEqual(rootfsBuildMounts(), []);
      assert.deepStrictEqual(processesMatching("sleep 4242"), [], "the hook's daemon died with the build");
      assert.strictEqual(await sharedTestStore().has(spec.key), false);
    });

    it("stops an interrupted build and leaves nothing running", async () => {
      const install = script(dir, "slow.sh", "#!/bin/sh\necho started\nexec sleep 4343\n");
      const controller = new AbortController();
      const progress = (line: string) => {
        if (line.includes("running install.sh")) setTimeout(() => controller.abort(), 1000);
      };
      await assert.rejects(
        buildRootfs(
          sharedTestStore(),
          "slow-rootfs",
          { image: "slow", install },
          { base, signal: controller.signal, progress },
        ),
        /slow: step slow-rootfs \(rootfs\) was interrupted/,
      );
      assert.deepStrictEqual(rootfsBuildMounts(), []);
      assert.deepStrictEqual(processesMatching("sleep 4343"), []);
    });

    it("takes a hook's processes down with it when unshare alone is SIGKILLed", async () => {
      const install = script(dir, "killed.sh", "#!/bin/sh\nsetsid sleep 4545 &\nexec sleep 4444\n");
      let killed: number | undefined;
      const killUnshare = () => {
        const [sleeper] = processesMatching("sleep 4444");
        if (!sleeper || killed) return;
        // Up from the hook to the unshare that started its namespaces; only that process is killed.
        for (let pid = parseInt(sleeper, 10); pid > 1; pid = parentOf(pid)) {
          if (fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("unshare\0")) {
            process.kill(pid, "SIGKILL");
            killed = pid;
            return;
          }
        }
      };
      const poll = setInterval(killUnshare, 200);
      try {
        await assert.rejects(
          buildRootfs(sharedTestStore(), "killed-rootfs", { image: "killed", install }, { base }),
          /killed: step killed-rootfs \(rootfs\) failed: install\.sh was killed by SIGKILL/,
        );
      } finally {
        clearInterval(poll);
      }
      assert.ok(killed, "found the build's unshare");
      assert.deepStrictEqual(rootfsBuildMounts(), []);
      assert.deepStrictEqual(processesMatching("sleep 4444"), []);
      assert.deepStrictEqual(processesMatching("sleep 4545"), []);
    });
  });
});

function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return parseInt(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1], 10);
}
