import { ProgressDisplay } from "../runner/progress";
import { ProgramError, runProgram } from "../runner/local-runner";
import { findProjectRoot } from "../runner/stack";
import { parseArgs, UsageError } from "./args";

export const upHelp = `usage: antidote-images up [--stack S] [--config K=V]… [--jobs N] [--json] [image…]

Runs the Pulumi program (Pulumi.yaml's main, index.ts) as \`pulumi up\` does — through Pulumi's Node.js language
host, with this command as the engine — and performs every resource for real: each build step runs, or is found
in the artifact store; lab images are tagged and pushed. Independent steps run in parallel; a failure skips only
what depends on it. Shows each step as it goes (image, step, cached/building/built/failed, elapsed) and a
summary; exits 1 if a step failed.

options:
  --stack S     stack whose config to use (stacks/Pulumi.<S>.yaml)   default: local
  --config K=V  sets config key K (antidote-images:K when K has no namespace) for this run, over the stack file's;
                the file is not changed; repeatable; not for secrets
  --jobs N      steps to run at once                                 default: 2
  --json        print the run report as JSON on stdout
  image…        only these images (and the images they build on)

environment:
  ANTIDOTE_REGISTRY_PASSWORD  the stack's antidote-images:registryPassword secret
  ANTIDOTE_BUILD_HOST_KEY     the stack's antidote-images:buildHostKey secret
  ANTIDOTE_JOBS               steps building at once on this machine, for every runner and pulumi up (default 2;
                              --jobs sets it for this run's steps)`;

export const planHelp = `usage: antidote-images plan [--stack S] [--config K=V]… [--json] [image…]

Without building anything (the program as \`pulumi preview\` runs it): every step of every image, its key, and
whether it is cached or would build; for a step that would build, which input changed since the last build
recorded for it (a file, an argument, an input step).

options:
  --stack S     stack whose config to use (stacks/Pulumi.<S>.yaml)   default: local
  --config K=V  sets config key K for this run, over the stack file's (as for up)
  --json        print the plan as JSON on stdout
  image…        only these images (and the images they build on)`;

export function upCommand(argv: string[]): Promise<number> {
  return run("up", argv);
}

export function planCommand(argv: string[]): Promise<number> {
  return run("plan", argv);
}

async function run(mode: "up" | "plan", argv: string[]): Promise<number> {
  const { positional, flags, lists } = parseArgs(
    argv,
    mode === "up" ? ["stack", "jobs"] : ["stack"],
    ["json"],
    ["config"],
  );
  if (flags.help) {
    console.log(mode === "up" ? upHelp : planHelp);
    return 0;
  }
  const jobs = flags.jobs === undefined ? undefined : Number(flags.jobs);
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs > 0)) {
    throw new UsageError(`--jobs must be a positive whole number, got '${flags.jobs}'`);
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const display = new ProgressDisplay();
  try {
    const report = await runProgram({
      root: findProjectRoot(),
      stack: typeof flags.stack === "string" ? flags.stack : "local",
      mode,
      images: positional,
      jobs,
      config: lists.config,
      onEvent: display.onEvent,
      signal: controller.signal,
    });
    display.finish(report);
    if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    const failed = report.steps.some((s) => s.status === "failed") || report.unsupported.length > 0;
    return failed || controller.signal.aborted ? 1 : 0;
  } catch (err) {
    // What ran before the program failed is summed up too; the error itself follows as the command's last line.
    if (err instanceof ProgramError && err.report) display.finish(err.report);
    throw err;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}
