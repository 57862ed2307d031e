/**
 * Lab-start benchmark (issues 15 and 16): 1, 2 and 4 lab containers started together as containerlab deploys them
 * (test/fixtures/topology.ts: privileged, CLAB_INTFS, the lesson bound at /antidote, every data link wired after the
 * start), a chain of routers r1 — r2 — … running OSPF from a generated lesson (one router alone has its link to a
 * namespace). Per run: `docker run` → every container started, → every VM's SSH banner, → every container healthy,
 * and for 2 and more routers → OSPF converged (every router has a route to every other router's loopback). Median,
 * fastest and slowest over RUNS runs; for each run's slowest node the boot's milestones from the console's
 * timestamps (`docker logs --timestamps`) and systemd's account (`systemd-analyze time`, `critical-chain`, `blame`).
 * The launcher picks the accelerator (KVM where a probe VM runs on /dev/kvm, else TCG) and its boot path; the image
 * is a reference, so any launcher or boot-path switch is measured the same way. No assertions: figures only.
 *
 *   RUNS=3 npx ts-node bench/lab-start.ts [--image REF] [--nodes 1,2,4] [--env NAME=VALUE]…
 *
 * --image: a lab image with FRRouting (default: the frr image, built through the pipeline in the shared test store).
 * --env: given to every container (e.g. a launcher boot-path switch).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { capture } from "../lib/exec";
import { sshRun } from "../lib/vm/ssh";
import { labContainer } from "../test/fixtures/lab-images";
import { Lab, LabNode } from "../test/fixtures/topology";
import { sharedTestStore, tempDir } from "../test/helpers";
import { interrupted } from "./interrupt";

function options(name: string): string[] {
  return process.argv.flatMap((arg, i) => (arg === `--${name}` ? [process.argv[i + 1]] : []));
}

const RUNS = Number(process.env.RUNS ?? "3");
if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`RUNS: expected a whole number ≥ 1, got ${process.env.RUNS}`);
const NODES = (options("nodes")[0] ?? "1,2,4").split(",").map(Number);
if (NODES.some((n) => !Number.isInteger(n) || n < 1 || n > 9))
  throw new Error(`--nodes: expected counts from 1 to 9 separated by commas, got ${options("nodes")[0]}`);
const ENV = Object.fromEntries(
  options("env").map((pair) => {
    const at = pair?.indexOf("=") ?? -1;
    if (at < 1) throw new Error(`--env: expected NAME=VALUE, got ${pair}`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }),
);
/** Generous: four TCG boots on two shared cores. */
const TIMEOUT_MS = 1_200_000;

/** The routers' lesson: r<k> — r<k+1> on 10.0.<k>.0/24, loopbacks 10.255.0.<k>, OSPF area 0 on every link. */
function chainLesson(dir: string, routers: number): void {
  const hosts: Record<string, object> = {};
  for (let k = 1; k <= routers; k++) {
    // Data interfaces in order: the link to r<k-1>, then the one to r<k+1> (a lone router's goes to a namespace).
    const subnets = [k - 1, k].filter((link) => link >= 1 && (link < routers || routers === 1));
    const interfaces = Object.fromEntries(
      subnets.map((link, i) => [`eth${i + 1}`, { addresses: [`10.0.${link}.${link === k ? 1 : 2}/24`] }]),
    );
    fs.mkdirSync(path.join(dir, `r${k}`));
    fs.writeFileSync(
      path.join(dir, `r${k}`, "frr.conf"),
      [
        "frr defaults traditional",
        `hostname r${k}`,
        "!",
        "interface lo",
        ` ip address 10.255.0.${k}/32`,
        "!",
        ...subnets.flatMap((_, i) => [`interface eth${i + 1}`, " ip ospf network point-to-point", "!"]),
        "router ospf",
        ` ospf router-id 10.255.0.${k}`,
        " network 10.0.0.0/16 area 0",
        ` network 10.255.0.${k}/32 area 0`,
        "!",
        "",
      ].join("\n"),
    );
    hosts[`r${k}`] = {
      hostname: `r${k}`,
      interfaces,
      files: [
        { source: `r${k}/frr.conf`, path: "/etc/frr/frr.conf", mode: "0640", owner: "frr", group: "frrvty" },
      ],
      services: [{ name: "frr", watch: ["/etc/frr/frr.conf"] }],
    };
  }
  fs.writeFileSync(path.join(dir, "lesson.json"), JSON.stringify({ version: 1, hosts }, null, 2));
  // Readable by the containers' unprivileged QEMU.
  execFileSync("chmod", ["-R", "a+rX", dir]);
}

/** Console and launcher lines that mark the boot's phases, in order. */
const MILESTONES: [string, RegExp][] = [
  ["QEMU started", /antidote-launch: booting /],
  ["VM restored from the snapshot", /antidote-launch: VM restored/],
  ["guest resumed", /antidote-resume: resumed/],
  ["GRUB boots the entry", /Booting `/],
  ["kernel", /Linux version /],
  ["init", /Run \/sbin\/init/],
  ["lesson applied", /antidote-configure: applied/],
  ["login prompt", /login: ?$/],
];

/** When each milestone's line reached the container log, in ms since the deploy. */
function milestones(lab: Lab, node: string): [string, number | undefined][] {
  const lines = lab.log(node, true).split(/\r?\n/);
  return MILESTONES.map(([label, pattern]) => {
    const line = lines.find((l) => pattern.test(l.replace(/\r/g, "")));
    // "2026-12-03T08:50:01.123456789Z text": Date takes milliseconds.
    const stamp = line && /^(\S+?)(\.\d{1,3})?\d*Z /.exec(line);
    return [label, stamp ? Date.parse(`${stamp[1]}${stamp[2] ?? ""}Z`) - lab.started : undefined];
  });
}

const seconds = (ms: number | undefined) => (ms === undefined ? "—" : `${(ms / 1000).toFixed(1)} s`);

interface RunFigures {
  started: number;
  banner: number;
  healthy: number;
  converged?: number;
}

/** One deploy of `routers` routers: its figures, and the slowest node's boot printed. */
async function run(
  image: string,
  credentials: { username: string; password: string },
  routers: number,
  index: number,
): Promise<RunFigures> {
  const lab = new Lab(`bls${process.pid % 100000}`);
  const lesson = tempDir("bench-lab-lesson");
  const stop = () => lab.destroy();
  interrupted.addEventListener("abort", stop);
  try {
    chainLesson(lesson, routers);
    const nodes: Record<string, LabNode> = {};
    const links: [string, string][] = [];
    for (let k = 1; k <= routers; k++) nodes[`r${k}`] = { image };
    for (let k = 1; k < routers; k++) links.push([`r${k}:eth${k === 1 ? 1 : 2}`, `r${k + 1}:eth1`]);
    if (routers === 1) links.push(["r1:eth1", "peer:p1"]);
    await lab.deploy({
      nodes,
      links,
      namespaces: routers === 1 ? ["peer"] : [],
      lessonDir: lesson,
      env: ENV,
    });
    const names = Object.keys(nodes);
    const loopbacks = names.map((_, k) => `10.255.0.${k + 1}`);
    const converged = async (node: string): Promise<number> => {
      const target = lab.sshTarget(node, credentials);
      const others = loopbacks.filter((address) => address !== `10.255.0.${node.slice(1)}`);
      // Polled in the guest (one login, not one per poll): a route to every other loopback, learned by OSPF.
      const check = others
        .map((address) => `ip -4 route show ${address} proto ospf | grep -q .`)
        .join(" && ");
      for (;;) {
        const r = await sshRun(target, `until ${check}; do sleep 0.5; done`, {
          timeoutMs: TIMEOUT_MS,
          signal: interrupted,
        });
        if (r.status === 0) return Date.now() - lab.started;
        if (Date.now() - lab.started > TIMEOUT_MS)
          throw new Error(`${node}: OSPF not converged: ${r.stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    };
    const perNode = await Promise.all(
      names.map(async (node) => {
        const [banner, healthy] = await Promise.all([
          lab.banner(node, TIMEOUT_MS),
          lab.healthy(node, TIMEOUT_MS),
        ]);
        // Watched from the moment the node is healthy (its login works): the figure is when every router has them.
        const ospf = routers > 1 ? await converged(node) : undefined;
        return { node, banner, healthy, ospf };
      }),
    );
    const slowest = perNode.reduce((a, b) => (b.healthy > a.healthy ? b : a));
    const started = Math.max(...names.map((node) => lab.events.get(lab.container(node))!.started ?? NaN));
    const figures: RunFigures = {
      started,
      banner: Math.max(...perNode.map((n) => n.banner)),
      healthy: slowest.healthy,
      converged: routers > 1 ? Math.max(...perNode.map((n) => n.ospf!)) : undefined,
    };
    const [, boot, accel] = /antidote-launch: booting \S+ \((\w+)\): (\w+)/.exec(lab.log(slowest.node)) ?? [];
    console.log(
      `${routers} node(s), run ${index}: all started ${seconds(figures.started)}, all SSH banners ${seconds(figures.banner)}, ` +
        `all healthy ${seconds(figures.healthy)}` +
        (figures.converged !== undefined ? `, OSPF converged ${seconds(figures.converged)}` : "") +
        ` (${boot ?? "?"} boot, ${accel ?? "?"}, load ${os.loadavg()[0].toFixed(1)})`,
    );
    const events = lab.events.get(lab.container(slowest.node))!;
    const phases: [string, number | undefined][] = [
      ["container started", events.started],
      ...milestones(lab, slowest.node),
      ["SSH banner", slowest.banner],
      ["healthy", slowest.healthy],
    ];
    console.log(
      `  slowest node ${slowest.node}: ` + phases.map(([label, at]) => `${label} ${seconds(at)}`).join(", "),
    );
    const analysis = await sshRun(
      lab.sshTarget(slowest.node, credentials),
      // systemd's account exists once the boot has finished (the lesson's services may still be starting).
      "timeout 120 systemctl is-system-running --wait >/dev/null; " +
        "systemd-analyze time; systemd-analyze critical-chain ssh.service; systemd-analyze blame | head -n 10",
      { timeoutMs: 300_000, signal: interrupted },
    );
    console.log((analysis.stdout + analysis.stderr).trimEnd().replace(/^/gm, "    "));
    return figures;
  } finally {
    interrupted.removeEventListener("abort", stop);
    lab.destroy();
    fs.rmSync(lesson, { recursive: true, force: true });
  }
}

function summary(label: string, values: (number | undefined)[]): string {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return "";
  return (
    `  ${label.padEnd(18)} median ${seconds(sorted[Math.floor(sorted.length / 2)])}, ` +
    `fastest ${seconds(sorted[0])}, slowest ${seconds(sorted[sorted.length - 1])}`
  );
}

async function main() {
  const given = options("image")[0];
  const frr = given ? undefined : await labContainer(sharedTestStore(), "frr");
  const image = given ?? frr!.ref;
  const credentials = frr?.metadata.credentials ?? (await imageCredentials(image));
  console.log(
    `lab-start bench: ${image}, ${RUNS} run(s) of ${NODES.join(", ")} node(s); ${os.cpus().length} CPUs, ` +
      `load ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}; /dev/kvm ${fs.existsSync("/dev/kvm") ? "present" : "absent"}` +
      (Object.keys(ENV).length ? `; env ${JSON.stringify(ENV)}` : ""),
  );
  for (const routers of NODES) {
    const runs: RunFigures[] = [];
    for (let i = 1; i <= RUNS; i++) runs.push(await run(image, credentials, routers, i));
    console.log(`${routers} node(s) over ${RUNS} run(s), from the first docker run:`);
    for (const line of [
      summary(
        "all started",
        runs.map((r) => r.started),
      ),
      summary(
        "all SSH banners",
        runs.map((r) => r.banner),
      ),
      summary(
        "all healthy",
        runs.map((r) => r.healthy),
      ),
      summary(
        "OSPF converged",
        runs.map((r) => r.converged),
      ),
    ])
      if (line) console.log(line);
  }
}

/** The login of an image given by reference: its dev.antidote.credentials label. */
async function imageCredentials(image: string): Promise<{ username: string; password: string }> {
  const r = await capture("docker", [
    "image",
    "inspect",
    "-f",
    '{{index .Config.Labels "dev.antidote.credentials"}}',
    image,
  ]);
  if (r.status !== 0) throw new Error(`--image ${image}: docker image inspect failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { username: string; password: string };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
