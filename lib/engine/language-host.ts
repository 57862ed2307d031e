import * as path from "path";
import { spawnChild } from "../exec";
import { EngineHandler, EngineServer } from "./monitor";
import { PulumiProject } from "./project";

export interface LanguageHostRun {
  project: PulumiProject;
  stack: string;
  /** Stack config, `namespace:key` → value (structured values as JSON), secrets in plain. */
  config: Record<string, string>;
  /** Keys of `config` that are secrets: the program reads them as secret Outputs. */
  secretKeys: string[];
  /** A preview (`pulumi preview`): the program registers everything, nothing is created. */
  dryRun: boolean;
  /** `--parallel`, as the CLI passes it. @default 2 */
  parallel?: number;
  handler: EngineHandler;
  /** Each line the program prints (its console), as the CLI shows it. @default dropped */
  onOutput?: (line: string) => void;
  /** Stops the program (SIGTERM). */
  signal?: AbortSignal;
  /** Extra environment for the program. @default none */
  env?: Record<string, string>;
}

export interface LanguageHostResult {
  /** The program's exit status (0: it ran to the end and every registration was answered). */
  exitCode: number;
  server: EngineServer;
  /** The last lines the program printed, for a failure that logged nothing. */
  outputTail: string[];
}

/** The SDK's program runner, which `pulumi-language-nodejs` starts (`@pulumi/pulumi/cmd/run`). */
export function sdkRunPath(root: string): string {
  return path.dirname(require.resolve("@pulumi/pulumi/cmd/run", { paths: [root] }));
}

/**
 * The command line `pulumi-language-nodejs` gives the SDK's runner for one `Run` request: the monitor and engine
 * addresses, organization, project, stack, working directory, dry run, parallelism, then the program — the project's
 * `main`, or `.` when it has none.
 */
export function languageHostArgv(options: {
  runPath: string;
  monitor: string;
  engine: string;
  project: PulumiProject;
  stack: string;
  dryRun: boolean;
  parallel: number;
}): string[] {
  return [
    ...options.project.nodeargs,
    options.runPath,
    "--monitor",
    options.monitor,
    "--engine",
    options.engine,
    "--organization",
    "organization",
    "--project",
    options.project.name,
    "--stack",
    options.stack,
    "--pwd",
    options.project.root,
    ...(options.dryRun ? ["--dry-run"] : []),
    "--parallel",
    String(options.parallel),
    options.project.main,
  ];
}

/**
 * The environment `pulumi-language-nodejs` adds: the config (keys as `<namespace>:config:<name>`, the form it still
 * hands the SDK), the secret keys, and the TypeScript options from `Pulumi.yaml`.
 */
export function languageHostEnv(options: {
  project: PulumiProject;
  config: Record<string, string>;
  secretKeys: string[];
}): Record<string, string> {
  const config = Object.fromEntries(
    Object.entries(options.config).map(([key, value]) => {
      const at = key.indexOf(":");
      return [`${key.slice(0, at)}:config:${key.slice(at + 1)}`, value];
    }),
  );
  return {
    PULUMI_CONFIG: JSON.stringify(config),
    PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(options.secretKeys),
    ...(options.project.typescript ? { PULUMI_NODEJS_TYPESCRIPT: "true" } : {}),
    ...(options.project.tsconfig ? { PULUMI_NODEJS_TSCONFIG_PATH: options.project.tsconfig } : {}),
  };
}

/**
 * Runs the Pulumi program the way `pulumi up` / `pulumi preview` does, with this process as the engine: serves a
 * resource monitor and engine on loopback, starts the SDK's language-host entry with the language host's arguments
 * and environment, and answers every registration through `handler` until the program exits.
 */
export async function runLanguageHost(options: LanguageHostRun): Promise<LanguageHostResult> {
  const server = new EngineServer(options.project.name, options.stack, options.handler);
  const address = await server.start();
  try {
    const argv = languageHostArgv({
      runPath: sdkRunPath(options.project.root),
      monitor: address,
      engine: address,
      project: options.project,
      stack: options.stack,
      dryRun: options.dryRun,
      parallel: options.parallel ?? 2,
    });
    const child = spawnChild(process.execPath, argv, {
      cwd: options.project.root,
      env: {
        ...process.env,
        ...options.env,
        ...languageHostEnv(options),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stop = () => child.kill("SIGTERM");
    options.signal?.addEventListener("abort", stop);
    const outputTail: string[] = [];
    const onLine = (line: string) => {
      outputTail.push(line);
      if (outputTail.length > 20) outputTail.shift();
      options.onOutput?.(line);
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = "";
      stream.on("data", (chunk: Buffer) => {
        const lines = (partial + chunk.toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        lines.forEach(onLine);
      });
      stream.on("end", () => partial && onLine(partial));
    }
    const exitCode = await new Promise<number>((resolve) => {
      child.on("error", (err) => {
        onLine(`could not start the language host: ${err.message}`);
        resolve(127);
      });
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    options.signal?.removeEventListener("abort", stop);
    return { exitCode, server, outputTail };
  } finally {
    await server.stop();
  }
}
