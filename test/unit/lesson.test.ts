import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Problem } from "../../lib/schema-errors";
import { LessonError, checkLesson, formatIp, loadLesson, parseCidr } from "../../lib/lesson/validate";
import { PROJECT_ROOT, tempDir } from "../helpers";

const FIXTURES = path.join(PROJECT_ROOT, "test/fixtures/lessons");
const TOOL = path.join(PROJECT_ROOT, "lib/scripts/stage3/antidote-configure");
const INTERFACES = ["eth0", "eth1", "eth2"];

interface Report {
  result: string;
  exitCode: number;
  errors: Problem[];
  changes: { entry: string; change: string }[];
}

/** antidote-configure as the host runs it: validation of the file alone, against three interfaces. */
function perl(args: string[]): { status: number | null; report: Report } {
  const r = spawnSync("perl", [TOOL, "--json", ...args], { encoding: "utf8" });
  assert.strictEqual(r.stderr, "", r.stderr);
  return { status: r.status, report: JSON.parse(r.stdout) as Report };
}

/** antidote-configure's check of a fixture without a VM: the same interfaces as the TypeScript validator gets. */
function staticCheck(fixture: string): ReturnType<typeof perl> {
  return perl([
    "--config",
    path.join(FIXTURES, fixture),
    "--check",
    "--static",
    "--interfaces",
    INTERFACES.join(","),
  ]);
}

function tsEntries(file: string): string[] {
  try {
    loadLesson(file, { interfaces: INTERFACES });
    return [];
  } catch (err) {
    assert.ok(err instanceof LessonError, String(err));
    return [...new Set(err.problems.map((p) => p.entry))].sort();
  }
}

/** Each bad fixture and the entries it must be rejected for (by both implementations). */
const BAD: Record<string, string[]> = {
  "bad-address.json": [
    "interfaces.eth1.addresses[1]",
    "interfaces.eth1.addresses[2]",
    "interfaces.eth1.addresses[3]",
  ],
  "bad-files.json": [
    "files[0].mode",
    "files[1].mode",
    "files[1].owner",
    "files[1].path",
    "files[2].path",
    "files[2].template",
    "files[3].source",
  ],
  "bad-interface-names.json": ["interfaces.eth01", "interfaces.eth1", "interfaces.wlan0"],
  "bad-interface.json": ["interfaces.eth5", "routes[0].dev"],
  "bad-keys.json": ["hostnme", "hosts.r1.hosts", "interfaces.eth1.adresses"],
  "bad-routes.json": ["routes[0].to", "routes[1].via", "routes[2]", "routes[3].metric", "routes[3].to"],
  "bad-source.json": ["files[1].source", "services[0].watch[0]"],
  "bad-syntax.json": ["(file)"],
  "bad-template.json": ["files[0]"],
  "bad-values.json": [
    "commands[0]",
    "commands[1].when",
    "hostname",
    "interfaces.eth0.state",
    "interfaces.eth1.mtu",
    "interfaces.eth1.state",
    "interfaces.eth1.vlans.5000",
    "services[1]",
    "services[2].restart",
    "vars.1x",
    "vars.list",
    "version",
  ],
};
const GOOD = ["empty.json", "everything.json", "templates.json", "two-routers.json"];

describe("lesson configuration", () => {
  it("has an expectation for every fixture", () => {
    const fixtures = fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".json"));
    assert.deepStrictEqual(fixtures.sort(), [...Object.keys(BAD), ...GOOD].sort());
  });

  for (const file of GOOD) {
    it(`accepts ${file} (TypeScript and antidote-configure)`, () => {
      assert.deepStrictEqual(tsEntries(path.join(FIXTURES, file)), []);
      const { status, report } = staticCheck(file);
      assert.deepStrictEqual(report.errors, []);
      assert.deepStrictEqual([status, report.result], [0, "valid"]);
    });
  }

  for (const [file, entries] of Object.entries(BAD)) {
    it(`rejects ${file}, naming ${entries.join(", ")} (TypeScript and antidote-configure)`, () => {
      assert.deepStrictEqual(tsEntries(path.join(FIXTURES, file)), entries);
      const { status, report } = staticCheck(file);
      assert.deepStrictEqual([status, report.result], [2, "invalid"]);
      assert.deepStrictEqual([...new Set(report.errors.map((e) => e.entry))].sort(), entries);
    });
  }

  it("says what was expected", () => {
    const problems = checkLesson(
      { interfaces: { eth9: { addresses: ["10.0.0.1"] } }, files: [{ source: "x", path: "/x", mode: 644 }] },
      { interfaces: INTERFACES },
    );
    assert.deepStrictEqual(problems, [
      { entry: "files[0].mode", message: "expected a string, got 644" },
      {
        entry: "interfaces.eth9.addresses[0]",
        message: 'expected an IPv4/IPv6 address with prefix length, got "10.0.0.1"',
      },
    ]);
    assert.deepStrictEqual(checkLesson({ interfaces: { eth9: {} } }, { interfaces: INTERFACES }), [
      { entry: "interfaces.eth9", message: "no such interface (this VM has eth0, eth1, eth2)" },
    ]);
  });

  it("checks one host when told which, and refuses an unknown one", () => {
    const doc = JSON.parse(fs.readFileSync(path.join(FIXTURES, "bad-template.json"), "utf8")) as unknown;
    const options = { lessonDir: FIXTURES, interfaces: INTERFACES };
    assert.deepStrictEqual(checkLesson(doc, { ...options, host: "r1" }), []);
    assert.deepStrictEqual(
      checkLesson(doc, { ...options, host: "r2" }).map((p) => p.message),
      [
        "template frr.conf.tmpl uses {{peer}}, which vars does not define (for host r2)",
        "template frr.conf.tmpl uses {{router_id}}, which vars does not define (for host r2)",
      ],
    );
    assert.deepStrictEqual(checkLesson(doc, { ...options, host: "r3" }), [
      { entry: "--host", message: "no section hosts.r3 (it has: r1, r2)" },
    ]);
  });

  it("compares addresses as ip prints them", () => {
    const canonical = (s: string) => {
      const c = parseCidr(s);
      return c && `${formatIp(c.family, c.bytes)}/${c.length}`;
    };
    assert.strictEqual(canonical("2001:DB8:0:0::1/64"), "2001:db8::1/64");
    assert.strictEqual(canonical("2001:db8:0:1:0:0:0:1/64"), "2001:db8:0:1::1/64");
    assert.strictEqual(canonical("10.0.0.1/24"), "10.0.0.1/24");
    for (const bad of ["010.0.0.1/24", "10.0.0.1/33", "1::2::3/64", "::ffff:1.2.3.4/96", "fe80::1%eth0/64"]) {
      assert.strictEqual(parseCidr(bad), undefined, bad);
    }
  });

  it("antidote-configure copies and renders files under --root, then changes nothing; a missing file is exit 4", () => {
    const dir = tempDir("lesson");
    try {
      fs.copyFileSync(path.join(FIXTURES, "motd.tmpl"), path.join(dir, "motd.tmpl"));
      const config = path.join(dir, "lesson.json");
      fs.writeFileSync(
        config,
        JSON.stringify({
          vars: { lesson: "BGP basics" },
          files: [
            { source: "motd.tmpl", path: "/etc/motd", template: true, mode: "0600", owner: "0", group: "0" },
          ],
        }),
      );
      const root = path.join(dir, "root");
      const first = perl(["--config", config, "--root", root]);
      assert.deepStrictEqual([first.status, first.report.result], [0, "applied"]);
      assert.deepStrictEqual(
        first.report.changes.map((c) => c.entry),
        ["files[0]"],
      );
      assert.strictEqual(fs.readFileSync(path.join(root, "etc/motd"), "utf8"), "Welcome to BGP basics.\n");
      assert.strictEqual(fs.statSync(path.join(root, "etc/motd")).mode & 0o7777, 0o600);
      const second = perl(["--config", config, "--root", root]);
      assert.deepStrictEqual(
        [second.status, second.report.result, second.report.changes],
        [0, "unchanged", []],
      );
      const missing = perl(["--config", path.join(dir, "none.json")]);
      assert.deepStrictEqual([missing.status, missing.report.result], [4, "missing"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
