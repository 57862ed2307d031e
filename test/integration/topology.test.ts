import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { sshRun, SshTarget } from "../../lib/vm/ssh";
import { labContainer, LabImageName } from "../fixtures/lab-images";
import { Lab, LabNode } from "../fixtures/topology";
import { PROJECT_ROOT, sharedTestStore, tempDir } from "../helpers";

const EXAMPLE = path.join(PROJECT_ROOT, "examples", "containerlab");

interface ClabTopology {
  topology: { nodes: Record<string, { image: string }>; links: { endpoints: [string, string] }[] };
}

interface Lesson {
  hosts: Record<string, { interfaces?: Record<string, { addresses: string[] }> }>;
}

/** The lab image a node of the example names (`127.0.0.1:5000/frr:latest` is the frr image). */
function imageName(reference: string): LabImageName {
  const name = /\/([a-z0-9-]+):[^/]+$/.exec(reference)?.[1];
  if (name !== "frr" && name !== "utility") throw new Error(`ospf.clab.yml: no lab image for ${reference}`);
  return name;
}

describe("the containerlab example topology: two frr routers and a utility host, wired after start (real dockerd, TCG)", function () {
  const store = sharedTestStore();
  const clab = YAML.parse(fs.readFileSync(path.join(EXAMPLE, "ospf.clab.yml"), "utf8")) as ClabTopology;
  const lesson = JSON.parse(fs.readFileSync(path.join(EXAMPLE, "lesson", "lesson.json"), "utf8")) as Lesson;
  const lab = new Lab(`topo${process.pid % 100000}`);
  const lessonDir = tempDir("topology-lesson");
  const targets: Record<string, SshTarget> = {};

  const ssh = async (node: string, command: string, timeoutMs = 120_000) => {
    const r = await sshRun(targets[node], command, { timeoutMs });
    assert.strictEqual(r.status, 0, `${node}: '${command}' failed:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };

  before(async function () {
    execFileSync("bash", [path.join(PROJECT_ROOT, "scripts", "start-dockerd.sh")], { stdio: "inherit" });
    // The example's lesson directory, readable by the containers' unprivileged QEMU.
    fs.cpSync(path.join(EXAMPLE, "lesson"), lessonDir, { recursive: true });
    execFileSync("chmod", ["-R", "a+rX", lessonDir]);
    const names = [...new Set(Object.values(clab.topology.nodes).map((node) => imageName(node.image)))];
    const built = Object.fromEntries(
      await Promise.all(names.map(async (name) => [name, await labContainer(store, name)] as const)),
    );
    const nodes: Record<string, LabNode> = {};
    for (const [node, { image }] of Object.entries(clab.topology.nodes)) {
      nodes[node] = { image: built[imageName(image)].ref };
    }
    await lab.deploy({
      nodes,
      links: clab.topology.links.map((link) => link.endpoints),
      lessonDir,
      env: { ANTIDOTE_ACCEL: "tcg" },
    });
    // Generous: three TCG boots on two shared cores, each router restarting frr for its lesson before sshd starts.
    await Promise.all(Object.keys(nodes).map((node) => lab.healthy(node, 1_500_000)));
    for (const [node, { image }] of Object.entries(clab.topology.nodes))
      targets[node] = lab.sshTarget(node, built[imageName(image)].metadata.credentials);
  });

  after(function () {
    lab.destroy();
    fs.rmSync(lessonDir, { recursive: true, force: true });
  });

  it("boots every node with as many VM NICs as links, each link stitched before the boot", function () {
    for (const node of Object.keys(clab.topology.nodes)) {
      const links = clab.topology.links.filter((l) =>
        l.endpoints.some((e) => e.startsWith(`${node}:`)),
      ).length;
      const log = lab.log(node);
      assert.match(log, new RegExp(`CLAB_INTFS=${links}\\)`), `${node}:\n${log}`);
      for (let i = 1; i <= links; i++) {
        const stitched = log.indexOf(`eth${i} (mtu 9500) stitched to VM NIC ${i}`);
        assert.ok(
          stitched >= 0 && stitched < log.indexOf("antidote-launch: booting"),
          `${node} eth${i}:\n${log}`,
        );
      }
      assert.match(log, new RegExp(`antidote-launch: booting .* ${links + 1} NIC\\(s\\)`));
    }
  });

  it("applies each node's section of the shared lesson: host name, the lesson's addresses", async function () {
    for (const node of Object.keys(clab.topology.nodes)) {
      const out = await ssh(node, "hostname; cat /run/antidote/configure.status; ip -o -4 addr show");
      assert.match(out, new RegExp(`^${node}\\n0 applied: .*\\(host ${node}\\)\\n`));
      for (const [ifname, { addresses }] of Object.entries(lesson.hosts[node].interfaces ?? {}))
        for (const address of addresses) assert.match(out, new RegExp(`${ifname}\\s+inet ${address} `), out);
    }
  });

  it("brings the OSPF adjacency between r1 and r2 to Full, and r1 learns r2's loopback", async function () {
    const full = (neighbor: string) =>
      `for i in $(seq 150); do vtysh -c 'show ip ospf neighbor' | grep -q '^${neighbor.replace(/\./g, "\\.")} .*Full' && break; sleep 2; done; ` +
      // What the router says, the daemons' state too when it failed.
      "vtysh -c 'show ip ospf neighbor'; vtysh -c 'show ip ospf interface'; systemctl --no-pager status frr | head -n 5";
    assert.match(
      await ssh("r1", full("10.255.0.2"), 400_000),
      /^10\.255\.0\.2\s.*\bFull\/.*\beth1:10\.0\.12\.1\b/m,
    );
    assert.match(
      await ssh("r2", full("10.255.0.1"), 400_000),
      /^10\.255\.0\.1\s.*\bFull\/.*\beth1:10\.0\.12\.2\b/m,
    );
    const learned = (prefix: string) =>
      `for i in $(seq 60); do ip route show ${prefix} proto ospf | grep -q . && break; sleep 2; done; ip route show proto ospf`;
    assert.match(
      await ssh("r1", learned("10.255.0.2"), 200_000),
      /^10\.255\.0\.2 (nhid \d+ )?via 10\.0\.12\.2 dev eth1/m,
    );
    // The way back to the host: r1 announces its host link.
    assert.match(
      await ssh("r2", learned("10.0.13.0/24"), 200_000),
      /^10\.0\.13\.0\/24 (nhid \d+ )?via 10\.0\.12\.1 dev eth1/m,
    );
  });

  it("lets the host ping across both routers: r2's link address and its loopback", async function () {
    const out = await ssh(
      "host",
      "ping -c 3 -W 5 10.0.12.2 && ping -c 3 -W 5 10.255.0.2 && traceroute -n -w 5 -q 1 10.255.0.2",
    );
    assert.match(out, /3 packets transmitted, 3 received.*\n[\s\S]*3 packets transmitted, 3 received/);
    // Two hops: r1's address on the host's link, then r2.
    assert.match(out, /^ 1\s+10\.0\.13\.1 .*\n 2\s+10\.255\.0\.2 /m);
  });
});
