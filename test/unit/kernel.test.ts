import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import {
  DEFAULT_KERNEL_FRAGMENTS,
  Kernel,
  KERNEL_FRAGMENT_DIR,
  kernelStepInputs,
} from "../../lib/components/kernel";
import { stepKey } from "../../lib/keys";
import { kernelStep } from "../../lib/steps/kernel";
import { checkConfig, ConfigCheckError, parseDotConfig, parseFragment } from "../../lib/steps/kernel/config";
import { evaluate, KconfigTree } from "../../lib/steps/kernel/kconfig";
import { StepArgsError } from "../../lib/steps/step";
import { tempDir } from "../helpers";
import { useMocks } from "../mocks";

const VERSION = "6.1.192-2";

/** A source tree with a handful of Kconfig entries covering each way an option can be dropped. */
function fakeTree(dir: string): KconfigTree {
  fs.mkdirSync(path.join(dir, "net"));
  fs.writeFileSync(
    path.join(dir, "Kconfig"),
    `mainmenu "test"
config MODULES
\tbool "Modules"
config EXPERT
\tbool "Expert"
config NET
\tbool "Networking"
\thelp
\t  config NOT_A_SYMBOL
\t  depends on NOTHING
if NET
source "net/Kconfig"
endif
config VT
\tbool "Virtual terminal" if EXPERT
\tdefault y
config KCMP
\tbool
config CHECKPOINT
\tbool "Checkpoint"
\tselect KCMP
`,
  );
  fs.writeFileSync(
    path.join(dir, "net", "Kconfig"),
    `config INET
\tbool "TCP/IP"
config BRIDGE
\ttristate "Bridge"
\tdepends on INET && (IPV6 || IPV6=n)
config IPV6
\ttristate "IPv6"
`,
  );
  return KconfigTree.load(dir);
}

describe("kernel step arguments", () => {
  const good = {
    sourcePackage: "linux-source-6.1",
    sourceVersion: VERSION,
    base: "allnoconfig",
    fragments: ["platform.config"],
    localVersion: "-antidote",
  };
  const fieldOf = (args: unknown) => {
    try {
      kernelStep.parseArgs(args as never);
    } catch (err) {
      assert.ok(err instanceof StepArgsError, String(err));
      return err.message;
    }
    return "accepted";
  };

  it("accepts good arguments", () => assert.strictEqual(fieldOf(good), "accepted"));

  it("names the field of a bad argument", () => {
    assert.strictEqual(
      fieldOf({ ...good, base: "defconfig" }),
      'base: expected one of allnoconfig, tinyconfig, got "defconfig"',
    );
    assert.match(fieldOf({ ...good, fragments: [] }), /^fragments: expected a non-empty list/);
    assert.match(
      fieldOf({ ...good, fragments: ["a.config", "../b.config"] }),
      /^fragments\[1\]: expected a file name/,
    );
    assert.match(
      fieldOf({ ...good, fragments: ["a.config", "a.config"] }),
      /^fragments\[1\]: expected a name not/,
    );
    assert.match(
      fieldOf({ ...good, sourceVersion: "latest" }),
      /^sourceVersion: expected a Debian package version/,
    );
    assert.match(
      fieldOf({ ...good, localVersion: "Antidote" }),
      /^localVersion: expected a lowercase suffix/,
    );
    assert.match(fieldOf({ ...good, sourcePackage: undefined }), /^sourcePackage: expected .*, got nothing$/);
  });
});

describe("kernel config fragments", () => {
  it("reads set and unset options and names the line of anything else", () => {
    const options = parseFragment(
      '# prose\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=64\n',
      "f.config",
    );
    assert.deepStrictEqual(
      options.map((o) => `${o.symbol}=${o.value}@${o.line}`),
      ["A=y@2", "B=n@3", "C=x y@4", "D=64@5"],
    );
    assert.throws(
      () => parseFragment("CONFIG_A=y\nCONIFG_B=y\n", "f.config"),
      /^Error: f\.config:2: not an option line/,
    );
    assert.throws(
      () => parseFragment("CONFIG_A=y\nCONFIG_A=n\n", "f.config"),
      /f\.config:2: CONFIG_A is already set on line 1/,
    );
  });

  it("parses every standard fragment, and the default list is exactly the kernel/ directory", () => {
    const inDir = fs.readdirSync(KERNEL_FRAGMENT_DIR).filter((f) => f.endsWith(".config"));
    assert.deepStrictEqual(DEFAULT_KERNEL_FRAGMENTS.map((f) => path.basename(f)).sort(), inDir.sort());
    for (const file of DEFAULT_KERNEL_FRAGMENTS) {
      assert.ok(parseFragment(fs.readFileSync(file, "utf8"), path.basename(file)).length > 0, file);
    }
  });
});

describe("kernel config check", () => {
  const dir = tempDir("kconfig");
  const tree = fakeTree(dir);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const check = (fragment: string, config: string) =>
    checkConfig(parseFragment(fragment, "test.config"), parseDotConfig(config), tree);

  it("passes when every requested option has its value, including unset ones", () => {
    assert.deepStrictEqual(check("CONFIG_NET=y\n# CONFIG_EXPERT is not set\n", "CONFIG_NET=y\n"), []);
  });

  it("names an unknown symbol and suggests the closest one", () => {
    const [mismatch] = check("CONFIG_BRIGDE=y\n", "CONFIG_NET=y\n");
    assert.strictEqual(mismatch.option.symbol, "BRIGDE");
    assert.match(mismatch.reason, /unknown symbol.*did you mean CONFIG_BRIDGE\?/);
    // A misspelled "is not set" hides a mistake too.
    assert.match(check("# CONFIG_NOPE is not set\n", "")[0].reason, /unknown symbol/);
    // Symbols inside help text are prose, not definitions.
    assert.match(check("# CONFIG_NOT_A_SYMBOL is not set\n", "")[0].reason, /unknown symbol/);
  });

  it("shows the unmet dependency with the values of its symbols, inherited `if` blocks included", () => {
    const [bridge] = check("CONFIG_BRIDGE=y\n", "CONFIG_NET=y\nCONFIG_IPV6=y\n");
    assert.strictEqual(bridge.actual, "n");
    assert.match(
      bridge.reason,
      /unmet dependency: depends on INET && \(IPV6 \|\| IPV6=n\) \[INET=n, IPV6=y\]/,
    );
    assert.match(bridge.reason, /net\/Kconfig:3/);
    const [inet] = check("CONFIG_INET=y\n", "");
    assert.match(inet.reason, /depends on NET \[NET=n\]/);
  });

  it("explains hidden prompts, selects, promptless symbols and m without modules", () => {
    assert.match(
      check("# CONFIG_VT is not set\n", "CONFIG_VT=y\n")[0].reason,
      /hidden unless EXPERT \[EXPERT=n\]/,
    );
    assert.match(
      check("# CONFIG_KCMP is not set\n", "CONFIG_CHECKPOINT=y\nCONFIG_KCMP=y\n")[0].reason,
      /selected by CHECKPOINT=y/,
    );
    assert.match(check("CONFIG_KCMP=y\n", "")[0].reason, /no prompt/);
    const [bridge] = check("CONFIG_BRIDGE=m\n", "CONFIG_NET=y\nCONFIG_INET=y\nCONFIG_BRIDGE=y\n");
    assert.match(bridge.reason, /MODULES=n.*request =y/);
  });

  it("fails with one line per option naming the fragment, the line, requested and actual values", () => {
    const error = new ConfigCheckError(check("CONFIG_NET=y\nCONFIG_BRIGDE=y\n", "CONFIG_NET=y\n"));
    assert.match(
      error.message,
      /^1 requested kernel option\(s\) did not get their value:\n {2}CONFIG_BRIGDE \(test\.config:2\): requested y, got n: unknown symbol/,
    );
  });

  it("evaluates Kconfig expressions in tristate logic", () => {
    const values = parseDotConfig('CONFIG_A=y\nCONFIG_B=m\nCONFIG_S="x"\nCONFIG_N=64\n');
    assert.strictEqual(evaluate("A && B", values), 1);
    assert.strictEqual(evaluate("A && !C", values), 2);
    assert.strictEqual(evaluate("C || B", values), 1);
    assert.strictEqual(evaluate('S = "x" && N >= 32', values), 2);
    assert.strictEqual(evaluate("(C || A) && C=n", values), 2);
  });
});

describe("kernel step key", () => {
  it("changes when one byte of a fragment changes, and with the source version", () => {
    const dir = tempDir("kernel-key");
    const fragment = path.join(dir, "extra.config");
    fs.writeFileSync(fragment, "CONFIG_VETH=y\n");
    const key = (sourceVersion = VERSION) => {
      const inputs = kernelStepInputs("k", {
        fragments: [...DEFAULT_KERNEL_FRAGMENTS, fragment],
        sourceVersion,
      });
      return stepKey({ kind: kernelStep.kind, version: kernelStep.version, parents: {}, ...inputs });
    };
    const before = key();
    assert.strictEqual(key(), before);
    fs.writeFileSync(fragment, "CONFIG_VETH=n\n");
    assert.notStrictEqual(key(), before);
    assert.notStrictEqual(key("6.1.192-3"), key());
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("Kernel component (Pulumi mocks)", () => {
  beforeEach(async () => {
    await useMocks();
  });

  it("rejects a missing fragment and a bad base, naming the component and the field", () => {
    assert.throws(
      () => new Kernel("kern", { fragments: ["kernel/nope.config"], sourceVersion: VERSION }),
      /^Error: Kernel kern: fragments: kernel\/nope\.config does not exist$/,
    );
    assert.throws(
      () => new Kernel("kern2", { base: "defconfig" as never, sourceVersion: VERSION }),
      /^Error: Kernel kern2: base: expected one of allnoconfig, tinyconfig, got "defconfig"$/,
    );
  });

  it("gives two components with the same arguments the same key", () => {
    const a = new Kernel("kern-a", { sourceVersion: VERSION, image: "a" });
    const b = new Kernel("kern-b", { sourceVersion: VERSION, image: "b" });
    assert.strictEqual(a.key, b.key);
  });
});
