/** A mistake in how a command was called: printed as one line with a pointer to `--help`, exit status 2. */
export class UsageError extends Error {}

export interface ParsedArgs {
  positional: string[];
  flags: Record<string, string | true>;
  /** The values of the flags that may be given more than once, in order. */
  lists: Record<string, string[]>;
}

/**
 * Parses `--name value`, `--name=value` and bare `--flag`; `-h` is `--help`. `valued` lists the flags that take a
 * value; any flag not in `valued` or `bare`, and any other `-x`, is an error, so a typo never silently does something
 * else (or becomes an image's name). A lone `-` is positional. `repeated` lists valued flags that may be given more
 * than once (their values go to `lists`).
 */
export function parseArgs(
  argv: string[],
  valued: string[],
  bare: string[] = [],
  repeated: string[] = [],
): ParsedArgs {
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  const lists: Record<string, string[]> = {};
  const known = () => [...valued, ...repeated, ...bare, "help"].map((f) => `--${f}`).join(", ");
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h") {
      flags.help = true;
      continue;
    }
    if (/^-[^-]/.test(arg)) throw new UsageError(`unknown option ${arg} (known: ${known()}, -h)`);
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (valued.includes(name) || repeated.includes(name)) {
      const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || value === "") throw new UsageError(`--${name} needs a value`);
      if (repeated.includes(name)) (lists[name] ??= []).push(value);
      else flags[name] = value;
    } else if (bare.includes(name) || name === "help") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
    } else {
      throw new UsageError(`unknown option --${name} (known: ${known()})`);
    }
  }
  return { positional, flags, lists };
}
