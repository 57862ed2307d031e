import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ANTIDOTE_CONFIGURE } from "../../lib/lesson/check";
import { Problem } from "../../lib/schema-errors";
import { PROJECT_ROOT, tempDir } from "../helpers";
import {
  FileVerdict,
  LESSON_FIXTURES as FIXTURES,
  docExamples,
  lessonValidate,
  lessonValidateJson,
} from "../lesson-fixtures";

const INTERFACES = ["eth0", "eth1", "eth2"];

interface Report {
  result: string;
  exitCode: number;
  errors: Problem[];
  changes: { entry: string; change: string }[];
}

const validate = (args: string[], cwd = FIXTURES) => lessonValidate(args, cwd);
const validateJson = (args: string[], cwd = FIXTURES) => lessonValidateJson(args, cwd);

/** `lesson validate` of one file: the exit status and its problems. */
async function problemsOf(
  args: string[],
  cwd = FIXTURES,
): Promise<{ status: number | null; problems: Problem[] }> {
  const { status, files } = await validateJson(args, cwd);
  assert.strictEqual(files.length, 1, JSON.stringify(files));
  return { status, problems: files[0].problems };
}

/** antidote-configure itself, with a JSON report. */
function configure(args: string[], cwd = FIXTURES): { status: number | null; report: Report } {
  const r = spawnSync("perl", [ANTIDOTE_CONFIGURE, "--json", ...args], { cwd, encoding: "utf8" });
  assert.strictEqual(r.stderr, "", r.stderr);
  return { status: r.status, report: JSON.parse(r.stdout) as Report };
}

const problem = (entry: string, message: string): Problem => ({ entry, message });

/** Every fixture's problems, against eth0..eth2, in antidote-configure's order and words. */
const EXPECTED: Record<string, Problem[]> = {
  "empty.json": [],
  "everything.json": [],
  "templates.json": [],
  "two-routers.json": [],
  "bad-address.json": [
    problem(
      "interfaces.eth1.addresses[1]",
      'expected an IPv4/IPv6 address with prefix length, got "10.0.0.300/24"',
    ),
    problem(
      "interfaces.eth1.addresses[2]",
      'expected an IPv4/IPv6 address with prefix length, got "2001:db8::1"',
    ),
    problem(
      "interfaces.eth1.addresses[3]",
      'expected an IPv4/IPv6 address with prefix length, got "fe80:::1/64"',
    ),
  ],
  "bad-duplicate-key.json": [
    problem("(file)", 'bad-duplicate-key.json: not valid JSON: line 5, column 11: key "eth1" appears twice'),
  ],
  "bad-files.json": [
    problem("files[0].mode", 'expected an octal mode as a string like "0640", got 640'),
    problem("files[1].path", 'expected an absolute file path (no "." or ".."), got "etc/issue"'),
    problem("files[1].mode", 'expected an octal mode as a string like "0640", got "0999"'),
    problem("files[1].owner", 'expected a user or group name or a numeric id, got "Bad User"'),
    problem("files[2].path", '"/etc/motd" is also the path of files[0]'),
    problem("files[2].template", 'expected true or false, got "yes"'),
    problem("files[3].source", "required, but missing"),
  ],
  "bad-interface-names.json": [
    problem("interfaces.eth01", 'expected an interface name like "eth1" or an index like "1"'),
    problem("interfaces.eth1", "same interface as interfaces.1"),
    problem("interfaces.wlan0", 'expected an interface name like "eth1" or an index like "1"'),
  ],
  "bad-interface.json": [
    problem("interfaces.eth5", "no such interface (this VM has eth0, eth1, eth2)"),
    problem("routes[0].dev", "no such interface: eth7 (this VM has eth0, eth1, eth2)"),
  ],
  "bad-keys.json": [
    problem(
      "hostnme",
      "unknown field (expected one of commands, files, hostname, hosts, interfaces, routes, services, vars, version)",
    ),
    problem("interfaces.eth1.adresses", "unknown field (expected one of addresses, mtu, state, vlans)"),
    problem(
      "hosts.r1.hosts",
      "unknown field (expected one of commands, files, hostname, interfaces, routes, services, vars)",
    ),
  ],
  "bad-routes.json": [
    problem("routes[0].to", 'expected a network (host bits zero), got "10.1.0.1/16"'),
    problem("routes[1].via", "expected an IPv6 gateway for an IPv6 route"),
    problem("routes[2]", 'expected "via" or "dev" (or both)'),
    problem("routes[3].to", "required, but missing"),
    problem("routes[3].metric", "expected at least 0, got -1"),
  ],
  "bad-source.json": [
    problem("files[1].source", "no such file in the lesson directory: r3/frr.conf"),
    problem("services[0].watch[0]", '"/etc/frr/vtysh.conf" is not the path of any files entry'),
  ],
  "bad-syntax.json": [
    problem("(file)", "bad-syntax.json: not valid JSON: line 1, column 21: expected a key in double quotes"),
  ],
  "bad-template.json": [
    problem("files[0]", "template frr.conf.tmpl uses {{peer}}, which vars does not define (for host r2)"),
    problem(
      "files[0]",
      "template frr.conf.tmpl uses {{router_id}}, which vars does not define (for host r2)",
    ),
  ],
  "bad-values.json": [
    problem("hostname", 'expected a host name (letters, digits and "-", dot-separated), got "r1_bad"'),
    problem("vars.1x", 'expected a variable name (letters, digits, "_"; not starting with a digit)'),
    problem("vars.list", "expected a string, number or true/false, got an array"),
    problem("interfaces.eth0.state", '"down" would cut the management network (eth0)'),
    problem("interfaces.eth1.mtu", "expected at least 68, got 20"),
    problem("interfaces.eth1.state", 'expected one of "up", "down", got "sideways"'),
    problem("interfaces.eth1.vlans.5000", "expected a VLAN id from 1 to 4094"),
    problem("services[1]", '"frr.service" is also services[0]'),
    problem("services[2].restart", 'expected one of "changed", "always", "never", got "sometimes"'),
    problem("commands[0]", "expected a non-empty command"),
    problem("commands[1].when", 'expected one of "changed", "always", got "never"'),
    problem("version", "expected 1, got 2"),
  ],
};

describe("lesson validate (antidote-configure --check on the host)", () => {
  const fixtures = fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".json"));
  let all: Promise<{ status: number | null; files: FileVerdict[] }>;
  // One CLI run for every fixture: Node's start-up is paid once.
  before(() => {
    all = validateJson([...fixtures, "--interfaces", INTERFACES.join(",")]);
    all.catch(() => {}); // each fixture's test awaits it and reports the failure
  });

  it("has an expectation for every fixture", () => {
    assert.deepStrictEqual(fixtures.sort(), Object.keys(EXPECTED).sort());
  });

  for (const [file, expected] of Object.entries(EXPECTED)) {
    const verdict = expected.length === 0 ? "accepts" : `rejects, naming ${expected.length}`;
    it(`${verdict} ${file}, with antidote-configure's verdict and words`, async () => {
      const { status, files } = await all;
      assert.deepStrictEqual(
        files.find((f) => f.file === file),
        { file, valid: expected.length === 0, problems: expected },
      );
      assert.strictEqual(status, 1, "the batch has invalid files");
      const direct = configure([
        "--config",
        file,
        "--check",
        "--static",
        "--interfaces",
        INTERFACES.join(","),
      ]);
      assert.deepStrictEqual(direct.report.errors, expected);
      assert.deepStrictEqual(
        [direct.status, direct.report.result],
        expected.length === 0 ? [0, "valid"] : [2, "invalid"],
      );
    });
  }

  it("rejects a duplicate key, as the VM does, and prints each problem as '<file>: <entry>: <message>'", async () => {
    const r = await validate(["bad-duplicate-key.json"]);
    assert.strictEqual(r.status, 1, r.stderr);
    assert.strictEqual(
      r.stderr,
      'bad-duplicate-key.json: (file): bad-duplicate-key.json: not valid JSON: line 5, column 11: key "eth1" appears twice\n' +
        "lesson validate: bad-duplicate-key.json: 1 problem\n",
    );
  });

  it("takes the interfaces from an image's metadata (--image), and a lesson directory for its lesson.json", async () => {
    const dir = tempDir("lesson");
    try {
      fs.copyFileSync(path.join(FIXTURES, "bad-interface.json"), path.join(dir, "lesson.json"));
      assert.deepStrictEqual(await problemsOf([dir, "--image", "frr"], PROJECT_ROOT), {
        status: 1,
        problems: EXPECTED["bad-interface.json"],
      });
      const valid = await validate(["everything.json", "--image", "frr"]);
      assert.deepStrictEqual(
        [valid.status, valid.stderr],
        [0, "lesson validate: everything.json: valid (interfaces eth0, eth1, eth2)\n"],
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("checks one host when told which (--host), and refuses an unknown one", async () => {
    const [r1, r2, r3] = await Promise.all(
      ["r1", "r2", "r3"].map((host) => problemsOf(["bad-template.json", "--host", host])),
    );
    assert.deepStrictEqual(r1, { status: 0, problems: [] });
    assert.deepStrictEqual(r2, { status: 1, problems: EXPECTED["bad-template.json"] });
    assert.deepStrictEqual(r3, {
      status: 1,
      problems: [problem("--host", "no section hosts.r3 in bad-template.json (it has: r1, r2)")],
    });
  });

  it("compares addresses as ip prints them, and refuses what ip would read otherwise", async () => {
    const dir = tempDir("lesson");
    try {
      const addresses = [
        "2001:DB8:0:0::1/64",
        "2001:db8::1/64",
        "2001:db8:0:1:0:0:0:1/64",
        "2001:db8:0:1::1/64",
      ];
      const bad = ["010.0.0.1/24", "10.0.0.1/33", "1::2::3/64", "::ffff:1.2.3.4/96", "fe80::1%eth0/64"];
      const doc = { interfaces: { eth1: { addresses: [...addresses, ...bad] } } };
      fs.writeFileSync(path.join(dir, "lesson.json"), JSON.stringify(doc));
      const at = (i: number) => `interfaces.eth1.addresses[${i}]`;
      assert.deepStrictEqual((await problemsOf(["lesson.json"], dir)).problems, [
        problem(at(1), `2001:db8::1/64 is also ${at(0)}`),
        problem(at(3), `2001:db8:0:1::1/64 is also ${at(2)}`),
        ...bad.map((a, i) =>
          problem(at(addresses.length + i), `expected an IPv4/IPv6 address with prefix length, got "${a}"`),
        ),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports keys and paths beyond ASCII as written", async () => {
    const dir = tempDir("lesson");
    try {
      // Latin-1 characters alone (once printed as single bytes) and a path beside a wide character (once encoded twice).
      const lesson = path.join(dir, "leçon");
      fs.mkdirSync(lesson);
      fs.writeFileSync(path.join(lesson, "lesson.json"), '{ "hôstname": "r1" }');
      fs.writeFileSync(path.join(lesson, "twice.json"), '{ "🙂": 1, "🙂": 2 }');
      assert.deepStrictEqual(await validateJson(["leçon", "leçon/twice.json"], dir), {
        status: 1,
        files: [
          {
            file: "leçon/lesson.json",
            valid: false,
            problems: [
              problem(
                "hôstname",
                "unknown field (expected one of commands, files, hostname, hosts, interfaces, routes, services, vars, version)",
              ),
            ],
          },
          {
            file: "leçon/twice.json",
            valid: false,
            problems: [
              problem(
                "(file)",
                'leçon/twice.json: not valid JSON: line 1, column 14: key "🙂" appears twice',
              ),
            ],
          },
        ],
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a missing file, and refuses bad usage with exit status 2", async () => {
    const [missing, both] = await Promise.all([
      problemsOf(["none.json"]),
      validate(["empty.json", "--image", "frr", "--interfaces", "eth0"]),
    ]);
    assert.deepStrictEqual(missing, {
      status: 1,
      problems: [problem("(file)", "no configuration file at none.json")],
    });
    assert.deepStrictEqual(
      [both.status, both.stderr.split("\n")[0]],
      [2, "antidote-images lesson: give --image or --interfaces, not both"],
    );
  });

  it("accepts the examples of docs/lessons.md", async () => {
    const examples = docExamples();
    assert.ok(examples.length > 0, "no ```json block in docs/lessons.md");
    const dir = tempDir("lesson");
    try {
      for (const r of ["r1", "r2"]) fs.cpSync(path.join(FIXTURES, r), path.join(dir, r), { recursive: true });
      const files = examples.map((example, i) => {
        const file = path.join(dir, `example-${i + 1}.json`);
        fs.writeFileSync(file, example);
        return file;
      });
      assert.deepStrictEqual(await validateJson([...files, "--image", "frr"], PROJECT_ROOT), {
        status: 0,
        files: files.map((file) => ({ file, valid: true, problems: [] })),
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A lesson directory holding the motd template fixture and `lesson` as its lesson.json; the config's path. */
function lessonWithMotd(dir: string, lesson: object): string {
  fs.copyFileSync(path.join(FIXTURES, "motd.tmpl"), path.join(dir, "motd.tmpl"));
  const config = path.join(dir, "lesson.json");
  fs.writeFileSync(config, JSON.stringify(lesson));
  return config;
}

describe("antidote-configure", () => {
  it("changes nothing with --check, even where it would apply changes", () => {
    const dir = tempDir("lesson");
    try {
      const config = lessonWithMotd(dir, {
        hostname: "elsewhere",
        vars: { lesson: "BGP basics" },
        files: [{ source: "motd.tmpl", path: "/etc/motd", template: true, owner: "0", group: "0" }],
        commands: [`touch ${path.join(dir, "ran")}`],
      });
      const root = path.join(dir, "root");
      const check = configure(["--config", config, "--check", "--static", "--root", root]);
      assert.deepStrictEqual([check.status, check.report.result, check.report.changes], [0, "valid", []]);
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["lesson.json", "motd.tmpl"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("copies and renders files under --root, then changes nothing; a missing file is exit 4", () => {
    const dir = tempDir("lesson");
    try {
      const config = lessonWithMotd(dir, {
        vars: { lesson: "BGP basics" },
        files: [
          { source: "motd.tmpl", path: "/etc/motd", template: true, mode: "0600", owner: "0", group: "0" },
        ],
      });
      const root = path.join(dir, "root");
      const first = configure(["--config", config, "--root", root]);
      assert.deepStrictEqual([first.status, first.report.result], [0, "applied"]);
      assert.deepStrictEqual(
        first.report.changes.map((c) => c.entry),
        ["files[0]"],
      );
      assert.strictEqual(fs.readFileSync(path.join(root, "etc/motd"), "utf8"), "Welcome to BGP basics.\n");
      assert.strictEqual(fs.statSync(path.join(root, "etc/motd")).mode & 0o7777, 0o600);
      const second = configure(["--config", config, "--root", root]);
      assert.deepStrictEqual(
        [second.status, second.report.result, second.report.changes],
        [0, "unchanged", []],
      );
      const missing = configure(["--config", path.join(dir, "none.json")]);
      assert.deepStrictEqual([missing.status, missing.report.result], [4, "missing"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("checks services against a system whose systemctl cannot answer as invalid, with systemctl's words", () => {
    const dir = tempDir("lesson");
    try {
      fs.mkdirSync(path.join(dir, "bin"));
      fs.writeFileSync(
        path.join(dir, "bin", "systemctl"),
        "#!/bin/sh\necho 'Failed to connect to bus: Host is down' >&2\nexit 1\n",
        { mode: 0o755 },
      );
      fs.writeFileSync(
        path.join(dir, "lesson.json"),
        JSON.stringify({ version: 1, services: [{ name: "frr" }, { name: "ssh" }] }),
      );
      const r = spawnSync(
        "perl",
        [
          ANTIDOTE_CONFIGURE,
          "--json",
          "--check",
          "--interfaces",
          "eth0",
          "--config",
          path.join(dir, "lesson.json"),
        ],
        { encoding: "utf8", env: { ...process.env, PATH: `${path.join(dir, "bin")}:${process.env.PATH}` } },
      );
      assert.strictEqual(r.status, 2, r.stderr);
      const why = " (systemctl show failed (status 1): Failed to connect to bus: Host is down)";
      assert.deepStrictEqual((JSON.parse(r.stdout) as Report).errors, [
        problem("services[0].name", `no unit frr.service on this system${why}`),
        problem("services[1].name", `no unit ssh.service on this system${why}`),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prints the status line it writes with --status, and refuses bad options with exit 1, naming them", () => {
    const dir = tempDir("lesson");
    try {
      const status = path.join(dir, "run", "configure.status");
      const missing = spawnSync(
        "perl",
        [ANTIDOTE_CONFIGURE, `--config=${path.join(dir, "none.json")}`, "--status", status],
        {
          encoding: "utf8",
        },
      );
      assert.strictEqual(missing.status, 4);
      assert.strictEqual(fs.readFileSync(status, "utf8"), "4 missing\n");
      assert.match(missing.stdout, /^antidote-configure status: 4 missing$/m);
      for (const [args, message] of [
        [["--bogus"], "unknown option: --bogus"],
        [["lesson.json"], "unexpected argument: lesson.json"],
        [["--config"], "--config needs a value"],
        [["--json=yes"], "--json takes no value"],
        [
          ["--boot", "--root", dir],
          "--boot and --only-commands change this system: not with --check, --dry-run, --static or --root",
        ],
        [
          ["--only-commands", "--check"],
          "--boot and --only-commands change this system: not with --check, --dry-run, --static or --root",
        ],
      ] as const) {
        const r = spawnSync("perl", [ANTIDOTE_CONFIGURE, ...args], { encoding: "utf8" });
        assert.deepStrictEqual(
          [r.status, r.stderr.split("\n")[0]],
          [1, `antidote-configure: ${message}`],
          args.join(" "),
        );
        assert.match(r.stderr, /^usage: antidote-configure/m);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("loaded with require, as antidote-resume loads it before a snapshot, runs nothing until main() is called", () => {
    const dir = tempDir("lesson");
    try {
      const status = path.join(dir, "configure.status");
      const loaded = spawnSync(
        "perl",
        [
          "-we",
          'require $ARGV[0]; print "loaded\n"; load_boot_modules(); exit main("--config", $ARGV[1], "--status", $ARGV[2])',
          ANTIDOTE_CONFIGURE,
          path.join(dir, "none.json"),
          status,
        ],
        { encoding: "utf8" },
      );
      assert.strictEqual(loaded.stderr, "");
      assert.strictEqual(loaded.status, 4);
      assert.match(loaded.stdout, /^loaded\nerror: no configuration file at .*none\.json\n/);
      assert.strictEqual(fs.readFileSync(status, "utf8"), "4 missing\n");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
