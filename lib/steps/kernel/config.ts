import * as fs from "fs";
import * as path from "path";
import { StepLog } from "../log";
import { ConfigValues, describeSymbols, evaluate, KconfigTree } from "./kconfig";

/**
 * The kernel configuration: a base (`allnoconfig`/`tinyconfig`) plus fragments merged with the kernel's own
 * `merge_config.sh -m`, completed by `olddefconfig`, then checked: Kconfig silently drops an option whose symbol
 * does not exist or whose dependencies are not met, so every option a fragment asks for is compared with the final
 * `.config` and a mismatch fails the build, naming the option, its fragment and why.
 */

/** Configurations the build can start from before the fragments are merged. */
export const CONFIG_BASES = ["allnoconfig", "tinyconfig"] as const;
export type ConfigBase = (typeof CONFIG_BASES)[number];

/** One option a fragment asks for. */
export interface RequestedOption {
  /** Symbol without the `CONFIG_` prefix. */
  symbol: string;
  /** `y`, `m`, `n`, a number or a string (without quotes). */
  value: string;
  /** Fragment file name. */
  fragment: string;
  line: number;
}

/** A fragment line that is neither an option, a comment nor blank. */
export class FragmentSyntaxError extends Error {}

/** Reads the options of a fragment: `CONFIG_X=value` and `# CONFIG_X is not set` (= n); other comments are prose. */
export function parseFragment(text: string, fragment: string): RequestedOption[] {
  const options: RequestedOption[] = [];
  const seen = new Map<string, number>();
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    const lineNumber = index + 1;
    const unset = /^#\s*CONFIG_([A-Za-z0-9_]+) is not set$/.exec(line);
    const set = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line);
    let option: RequestedOption;
    if (unset) option = { symbol: unset[1], value: "n", fragment, line: lineNumber };
    else if (set) option = { symbol: set[1], value: unquote(set[2]), fragment, line: lineNumber };
    else if (line === "" || line.startsWith("#")) return;
    else
      throw new FragmentSyntaxError(`${fragment}:${lineNumber}: not an option line: ${JSON.stringify(line)}`);
    const earlier = seen.get(option.symbol);
    if (earlier !== undefined) {
      throw new FragmentSyntaxError(
        `${fragment}:${lineNumber}: CONFIG_${option.symbol} is already set on line ${earlier}`,
      );
    }
    seen.set(option.symbol, lineNumber);
    options.push(option);
  });
  return options;
}

/** Reads a `.config` into symbol → value (strings unquoted, `# ... is not set` as `n`). */
export function parseDotConfig(text: string): ConfigValues {
  const values: ConfigValues = new Map();
  for (const raw of text.split("\n")) {
    const unset = /^# CONFIG_([A-Za-z0-9_]+) is not set$/.exec(raw);
    const set = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(raw);
    if (unset) values.set(unset[1], "n");
    else if (set) values.set(set[1], unquote(set[2]));
  }
  return values;
}

/** An option whose final value is not what its fragment asked for. */
export interface ConfigMismatch {
  option: RequestedOption;
  /** Final value (`n` when the symbol is absent from `.config`). */
  actual: string;
  /** Why, as far as the Kconfig files tell. */
  reason: string;
}

/**
 * Compares every requested option with the final configuration. When several fragments set one symbol, the last
 * one wins (as in `merge_config.sh`) and only it is checked. An unknown symbol is a mismatch even when it asks for
 * `n`: a misspelled "is not set" hides a mistake just as well.
 */
export function checkConfig(
  requested: RequestedOption[],
  final: ConfigValues,
  tree: KconfigTree,
): ConfigMismatch[] {
  const effective = new Map<string, RequestedOption>();
  for (const option of requested) effective.set(option.symbol, option);
  const mismatches: ConfigMismatch[] = [];
  for (const option of effective.values()) {
    const actual = final.get(option.symbol) ?? "n";
    if (!tree.has(option.symbol)) {
      mismatches.push({ option, actual, reason: unknownSymbolReason(option.symbol, tree) });
    } else if (actual !== option.value) {
      mismatches.push({ option, actual, reason: explainMismatch(option, actual, final, tree) });
    }
  }
  return mismatches;
}

/** The build's config check failed: the message lists every mismatch, one per line. */
export class ConfigCheckError extends Error {
  constructor(readonly mismatches: ConfigMismatch[]) {
    super(
      `${mismatches.length} requested kernel option(s) did not get their value:\n` +
        mismatches
          .map(
            ({ option, actual, reason }) =>
              `  CONFIG_${option.symbol} (${option.fragment}:${option.line}): ` +
              `requested ${option.value}, got ${actual}: ${reason}`,
          )
          .join("\n"),
    );
  }
}

function unknownSymbolReason(symbol: string, tree: KconfigTree): string {
  const suggestion = tree.closest(symbol);
  return (
    `unknown symbol: no Kconfig file of this kernel defines it for x86` +
    (suggestion ? ` (did you mean CONFIG_${suggestion}?)` : " (misspelled, or not in this kernel version)")
  );
}

function explainMismatch(
  option: RequestedOption,
  actual: string,
  final: ConfigValues,
  tree: KconfigTree,
): string {
  const definitions = tree.definitionsOf(option.symbol);
  const where = `defined at ${definitions.map((d) => d.location).join(", ")}`;
  const requested = option.value;

  if (requested === "m" && actual === "y" && final.get("MODULES") !== "y") {
    return `modules are disabled (MODULES=n), so a tristate set to m is built in: request =y`;
  }
  if (requested !== "n" && (actual === "n" || (requested === "y" && actual === "m"))) {
    const needed = requested === "y" && definitions.some((d) => d.type === "tristate") ? 2 : 1;
    const unmet = definitions.flatMap((d) => d.dependsOn.filter((c) => evaluate(c, final) < needed));
    if (unmet.length > 0) {
      return `unmet dependency: ${unmet.map((c) => `depends on ${c} [${describeSymbols(c, final)}]`).join("; ")} (${where})`;
    }
    if (definitions.every((d) => !d.hasPrompt)) {
      return `it has no prompt, so only a 'select' or its default can set it (${where})`;
    }
    const hidden = definitions.flatMap((d) => d.promptIf.filter((c) => evaluate(c, final) === 0));
    if (hidden.length > 0) {
      return `its prompt is hidden unless ${hidden.map((c) => `${c} [${describeSymbols(c, final)}]`).join(" and ")}, so it keeps its default (${where})`;
    }
    return `Kconfig turned it off; a choice or range may exclude it (${where})`;
  }
  if (requested === "n") {
    const selectedBy = tree
      .selectorsOf(option.symbol)
      .filter(
        (s) => (final.get(s.symbol) ?? "n") !== "n" && (!s.condition || evaluate(s.condition, final) > 0),
      )
      .map((s) => `${s.symbol}=${final.get(s.symbol)}${s.condition ? ` if ${s.condition}` : ""}`);
    if (selectedBy.length > 0) return `selected by ${selectedBy.join(", ")} (${where})`;
    const hidden = definitions.flatMap((d) => d.promptIf.filter((c) => evaluate(c, final) === 0));
    if (hidden.length > 0) {
      return `its prompt is hidden unless ${hidden.map((c) => `${c} [${describeSymbols(c, final)}]`).join(" and ")}, so it keeps its default (${where})`;
    }
    if (definitions.every((d) => !d.hasPrompt)) return `it has no prompt, so its default decides (${where})`;
    return `Kconfig kept it on: a choice needs it or another option implies it (${where})`;
  }
  return `Kconfig did not accept the value (outside the option's range, or another option sets it) (${where})`;
}

/** A fragment as the build reads it: its name (for messages) and where its file is. */
export interface Fragment {
  name: string;
  path: string;
}

export interface GenerateConfigOptions {
  /** Kernel source tree (left untouched: the build is out of tree). */
  srcDir: string;
  /** Build directory; `.config` is written there. */
  buildDir: string;
  base: ConfigBase;
  fragments: Fragment[];
  log: StepLog;
  /** `make` arguments before the target: `-C <src> O=<build> ARCH=... CC=...`, the same for every invocation. */
  makeArgs: string[];
  /** Environment for `make`. */
  env: Record<string, string>;
}

export interface GeneratedConfig {
  /** Path of the final `.config`. */
  path: string;
  values: ConfigValues;
  /** How many options the fragments asked for; every one was checked. */
  checked: number;
}

/**
 * Generates and checks the configuration without compiling anything (about 10 s), so a bad fragment fails fast
 * and tests can exercise the check alone. Throws {@link ConfigCheckError} on a mismatch.
 */
export async function generateConfig(options: GenerateConfigOptions): Promise<GeneratedConfig> {
  const { srcDir, buildDir, log, env } = options;
  const requested = options.fragments.flatMap((f) => parseFragment(fs.readFileSync(f.path, "utf8"), f.name));
  const make = (target: string) => log.exec("make", [...options.makeArgs, target], { env });
  fs.mkdirSync(buildDir, { recursive: true });
  await make(options.base);
  const dotConfig = path.join(buildDir, ".config");
  await log.exec(
    path.join(srcDir, "scripts/kconfig/merge_config.sh"),
    ["-m", "-O", buildDir, dotConfig, ...options.fragments.map((f) => f.path)],
    { cwd: buildDir, env },
  );
  await make("olddefconfig");
  const values = parseDotConfig(fs.readFileSync(dotConfig, "utf8"));
  const mismatches = checkConfig(requested, values, KconfigTree.load(srcDir));
  if (mismatches.length > 0) throw new ConfigCheckError(mismatches);
  log.write(`config check: all ${requested.length} requested options have their values`);
  return { path: dotConfig, values, checked: requested.length };
}

function unquote(value: string): string {
  return /^".*"$/.test(value) ? value.slice(1, -1).replace(/\\(.)/g, "$1") : value;
}
