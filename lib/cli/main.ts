import * as fs from "fs";
import * as path from "path";
import { UsageError } from "./args";

interface Command {
  /** Loaded on use: `step` runs once per build step and must not pay for loading Pulumi. */
  load: () => Promise<(argv: string[]) => Promise<number>>;
  summary: string;
}

const commands: Record<string, Command> = {
  up: {
    load: async () => (await import("./run")).upCommand,
    summary: "build, test and publish the images of a stack (the local runner)",
  },
  plan: {
    load: async () => (await import("./run")).planCommand,
    summary: "show every step's key and what would build, and why, without building",
  },
  vm: {
    load: async () => (await import("./vm")).vmCommand,
    summary: "build an image, boot it and log in over SSH (or run one command in it)",
  },
  diff: {
    load: async () => (await import("./diff")).diffCommand,
    summary:
      "show what changed (unified diffs of input files, old → new arguments) for every step that would rebuild",
  },
  catalog: {
    load: async () => (await import("./catalog")).catalogCommand,
    summary: "list the images of a curriculum repository (json, markdown or an html page)",
  },
  lesson: {
    load: async () => (await import("./lesson")).lessonCommand,
    summary: "validate a lesson configuration (lesson.json) as antidote-configure would in the VM",
  },
  gc: {
    load: async () => (await import("./gc")).gcCommand,
    summary: "remove the artifacts the stack's current steps no longer need",
  },
  step: {
    load: async () => (await import("./step")).stepCommand,
    summary: "build one step from a JSON spec on stdin (what the program's commands run)",
  },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return (
    `usage: antidote-images <command> [options]\n       antidote-images --version\n\n` +
    `commands:\n${lines.join("\n")}\n\n` +
    "Run 'antidote-images <command> --help' for a command's options."
  );
}

/** The package's version, from its package.json. */
function version(): string {
  const manifest = path.join(__dirname, "..", "..", "package.json");
  return (JSON.parse(fs.readFileSync(manifest, "utf8")) as { version: string }).version;
}

/** Runs the CLI; errors print as one line (no stack trace unless ANTIDOTE_DEBUG is set) and set the exit status. */
export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(help());
    return;
  }
  if (name === "--version") {
    console.log(version());
    return;
  }
  const command = commands[name];
  try {
    if (!command) throw new UsageError(`unknown command '${name}'`);
    process.exitCode = await (await command.load())(rest);
  } catch (err) {
    const usage = err instanceof UsageError;
    process.stderr.write(`antidote-images${command ? ` ${name}` : ""}: ${(err as Error).message}\n`);
    if (usage) process.stderr.write(`Run 'antidote-images ${command ? `${name} ` : ""}--help' for usage.\n`);
    if (process.env.ANTIDOTE_DEBUG) console.error(err);
    process.exitCode = usage ? 2 : 1;
  }
}
