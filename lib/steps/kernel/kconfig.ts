import * as fs from "fs";
import * as path from "path";

/**
 * Just enough of the Kconfig language to explain why an option did not get the value a fragment asked for: which
 * symbols exist for the architecture, under which conditions each one can be set, and who `select`s it. It follows
 * `source` from the top-level `Kconfig`, so `if`/`menu` conditions inherited from the sourcing file are known.
 */

/** Where a symbol is defined and what its definition requires. */
export interface SymbolDefinition {
  /** `file:line`, relative to the source tree. */
  location: string;
  /** `bool`, `tristate`, `int`, `hex` or `string` (empty when the type is given by another definition). */
  type: string;
  /** Conditions of the definition's own `depends on` and of the enclosing `if`, `menu` and `choice` blocks. */
  dependsOn: string[];
  /** Whether the definition has a prompt (without one, only `select` or a default can set the symbol). */
  hasPrompt: boolean;
  /** The `if` condition of the prompt and the enclosing menus' `visible if`: when false, the prompt is hidden. */
  promptIf: string[];
}

export interface Selector {
  /** The symbol whose definition says `select`. */
  symbol: string;
  /** Its `if` condition, if any. */
  condition?: string;
}

/** Values of a `.config`, by symbol name without `CONFIG_`; `n` for `# CONFIG_X is not set`. */
export type ConfigValues = Map<string, string>;

interface Frame {
  kind: "if" | "menu" | "choice";
  /** Conditions every entry inside inherits as dependencies. */
  depends: string[];
  /** `visible if` conditions (menus only). */
  visibleIf: string[];
}

/** A number literal in an expression; any other word is a symbol (an unset one is n). */
const NUMBER = /^(-?\d+|0x[0-9a-fA-F]+)$/;

const TYPES = new Set(["bool", "tristate", "int", "hex", "string", "def_bool", "def_tristate"]);

export class KconfigTree {
  private readonly definitions = new Map<string, SymbolDefinition[]>();
  private readonly selectors = new Map<string, Selector[]>();

  private constructor(private readonly srcDir: string) {}

  /** Parses the tree the way `make ARCH=x86_64` sees it. */
  static load(srcDir: string, srcArch = "x86"): KconfigTree {
    const tree = new KconfigTree(srcDir);
    tree.parseFile("Kconfig", [], srcArch);
    return tree;
  }

  has(symbol: string): boolean {
    return this.definitions.has(symbol);
  }

  definitionsOf(symbol: string): SymbolDefinition[] {
    return this.definitions.get(symbol) ?? [];
  }

  selectorsOf(symbol: string): Selector[] {
    return this.selectors.get(symbol) ?? [];
  }

  /** The defined symbol closest to `symbol` (for "did you mean"), if any is close enough to be a likely typo. */
  closest(symbol: string): string | undefined {
    let best: string | undefined;
    let bestDistance = Math.max(2, Math.floor(symbol.length / 5)) + 1;
    for (const candidate of this.definitions.keys()) {
      if (Math.abs(candidate.length - symbol.length) >= bestDistance) continue;
      const distance = editDistance(symbol, candidate, bestDistance);
      if (distance < bestDistance) {
        best = candidate;
        bestDistance = distance;
      }
    }
    return best;
  }

  private parseFile(relative: string, inherited: Frame[], srcArch: string): void {
    const file = path.join(this.srcDir, relative);
    const lines = fs.readFileSync(file, "utf8").split("\n");
    const frames: Frame[] = [...inherited];
    // The entry (config, menu or choice) that `depends on`, `select` and prompt lines currently belong to.
    let entry: { symbol?: string; definition?: SymbolDefinition; frame?: Frame } | undefined;
    let helpIndent: number | undefined;
    let inHelp = false;

    for (let i = 0; i < lines.length; i++) {
      // Joined continuation lines keep their first line's number.
      let raw = lines[i];
      const lineNumber = i + 1;
      while (raw.endsWith("\\") && i + 1 < lines.length) raw = raw.slice(0, -1) + " " + lines[++i];

      if (inHelp) {
        if (raw.trim() === "") continue;
        const indent = indentation(raw);
        helpIndent ??= indent;
        if (indent >= helpIndent && indent > 0) continue;
        inHelp = false;
        helpIndent = undefined;
      }
      const line = stripComment(raw).trim();
      if (line === "") continue;
      const [keyword, ...restWords] = line.split(/\s+/);
      const rest = line.slice(keyword.length).trim();

      switch (keyword) {
        case "config":
        case "menuconfig": {
          const symbol = restWords[0];
          const definition: SymbolDefinition = {
            location: `${relative}:${lineNumber}`,
            type: "",
            dependsOn: frames.flatMap((f) => f.depends),
            hasPrompt: false,
            promptIf: frames.flatMap((f) => f.visibleIf),
          };
          const list = this.definitions.get(symbol) ?? [];
          list.push(definition);
          this.definitions.set(symbol, list);
          entry = { symbol, definition };
          break;
        }
        case "menu":
        case "choice": {
          const frame: Frame = { kind: keyword, depends: [], visibleIf: [] };
          frames.push(frame);
          entry = { frame };
          break;
        }
        case "if":
          frames.push({ kind: "if", depends: [rest], visibleIf: [] });
          entry = undefined;
          break;
        case "endif":
        case "endmenu":
        case "endchoice":
          frames.pop();
          entry = undefined;
          break;
        case "comment":
        case "mainmenu":
          entry = undefined;
          break;
        case "source":
        case "osource":
        case "rsource":
        case "orsource": {
          const target = unquote(rest).replace(/\$\(SRCARCH\)/g, srcArch);
          const resolved =
            keyword.startsWith("r") || keyword === "orsource"
              ? path.join(path.dirname(relative), target)
              : target;
          if (fs.existsSync(path.join(this.srcDir, resolved))) {
            this.parseFile(resolved, frames, srcArch);
          } else if (!keyword.startsWith("o")) {
            throw new Error(`${relative}:${lineNumber}: sourced file ${resolved} does not exist`);
          }
          entry = undefined;
          break;
        }
        case "help":
        case "---help---":
          inHelp = true;
          break;
        case "depends":
          if (restWords[0] === "on") {
            const condition = rest.replace(/^on\s+/, "");
            if (entry?.definition) entry.definition.dependsOn.push(condition);
            else if (entry?.frame) entry.frame.depends.push(condition);
          }
          break;
        case "visible":
          if (entry?.frame && restWords[0] === "if") entry.frame.visibleIf.push(rest.replace(/^if\s+/, ""));
          break;
        case "select":
          if (entry?.symbol) {
            const [, selected, condition] = /^(\S+)(?:\s+if\s+(.+))?$/.exec(rest) ?? [];
            if (selected) {
              const list = this.selectors.get(selected) ?? [];
              list.push({ symbol: entry.symbol, condition });
              this.selectors.set(selected, list);
            }
          }
          break;
        case "prompt":
          if (entry?.definition) this.addPrompt(entry.definition, rest);
          break;
        default:
          if (entry?.definition && TYPES.has(keyword)) {
            if (!keyword.startsWith("def_")) {
              entry.definition.type = keyword;
              if (rest.startsWith('"')) this.addPrompt(entry.definition, rest);
            } else {
              entry.definition.type = keyword.slice(4);
            }
          }
      }
    }
  }

  private addPrompt(definition: SymbolDefinition, text: string): void {
    definition.hasPrompt = true;
    const condition = /^"(?:[^"\\]|\\.)*"\s+if\s+(.+)$/.exec(text)?.[1];
    if (condition) definition.promptIf.push(condition);
  }
}

/**
 * Evaluates a Kconfig expression against a `.config` in Kconfig's tristate logic: n = 0, m = 1, y = 2; `&&` is the
 * minimum, `||` the maximum, `!` is 2 − x; comparisons are 2 when true. An unset symbol is n.
 */
export function evaluate(expression: string, values: ConfigValues): number {
  const tokens = expression.match(/&&|\|\||!=|<=|>=|[!=<>()]|"(?:[^"\\]|\\.)*"|[^\s&|!=<>()"]+/g) ?? [];
  let position = 0;
  const peek = () => tokens[position];
  const next = () => tokens[position++];

  const valueOf = (token: string): string => {
    if (token.startsWith('"')) return token.slice(1, -1);
    if (token === "y" || token === "m" || token === "n") return token;
    if (NUMBER.test(token)) return token;
    return values.get(token) ?? "n";
  };
  const tristate = (value: string) => (value === "y" ? 2 : value === "m" ? 1 : 0);

  const primary = (): number => {
    const token = next();
    if (token === "!") return 2 - primary();
    if (token === "(") {
      const value = or();
      next(); // ")"
      return value;
    }
    const op = peek();
    if (op === "=" || op === "!=" || op === "<" || op === ">" || op === "<=" || op === ">=") {
      next();
      const left = valueOf(token);
      const right = valueOf(next());
      const numeric = NUMBER.test(left) && NUMBER.test(right);
      const [a, b] = numeric ? [Number(left), Number(right)] : [left, right];
      const result =
        op === "="
          ? a === b
          : op === "!="
            ? a !== b
            : op === "<"
              ? a < b
              : op === ">"
                ? a > b
                : op === "<="
                  ? a <= b
                  : a >= b;
      return result ? 2 : 0;
    }
    return tristate(valueOf(token));
  };
  const and = (): number => {
    let value = primary();
    while (peek() === "&&") {
      next();
      value = Math.min(value, primary());
    }
    return value;
  };
  const or = (): number => {
    let value = and();
    while (peek() === "||") {
      next();
      value = Math.max(value, and());
    }
    return value;
  };
  return tokens.length === 0 ? 2 : or();
}

/** The symbols an expression mentions, with their values, e.g. `MODULES=n, NET=y`. */
export function describeSymbols(expression: string, values: ConfigValues): string {
  const symbols = new Set(expression.match(/\b[A-Z][A-Z0-9_]*\b/g) ?? []);
  return [...symbols].map((s) => `${s}=${values.get(s) ?? "n"}`).join(", ");
}

function stripComment(line: string): string {
  // A `#` outside quotes starts a comment.
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '"' && line[i - 1] !== "\\") quoted = !quoted;
    else if (line[i] === "#" && !quoted) return line.slice(0, i);
  }
  return line;
}

function indentation(line: string): number {
  let columns = 0;
  for (const c of line) {
    if (c === " ") columns++;
    else if (c === "\t") columns = (Math.floor(columns / 8) + 1) * 8;
    else break;
  }
  return columns;
}

function unquote(text: string): string {
  return text.replace(/^"(.*)"$/, "$1");
}

/** Levenshtein distance, giving up (returning `limit`) once every path is at least `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      rowMin = Math.min(rowMin, current[j]);
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return previous[b.length];
}
