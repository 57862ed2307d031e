import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { projectSettings } from "../config";
import { Json, stepKey } from "../keys";
import { assignHost, remoteStepCommand } from "../remote/hosts";
import { StepArgsError, StepDefinition, StepResult, StepSpec } from "../steps/step";

/** The `antidote-images` command, relative to the project directory so state does not name the checkout's path. */
const CLI = path.relative(process.cwd(), path.join(__dirname, "..", "..", "bin", "antidote-images.js"));

/** A step built by a component: what later steps need to depend on it. */
export interface BuiltStep {
  /** Logical name of the step (the component's name). */
  readonly stepName: string;
  /** Input-addressed key, known while the program runs (also in `pulumi preview`). */
  readonly key: string;
  /** The command resource that builds it (on this machine, or on its build host); later steps depend on it. */
  readonly command: StepCommandResource;
  /** The step's result once built. */
  readonly result: pulumi.Output<StepResult>;
  /** What the step command reads on stdin, without `ancestors`. */
  readonly spec: StepSpec;
  /** Key → spec of every step it reads, directly or not (what rebuilds a parent the store lost). */
  readonly ancestors: Record<string, StepSpec>;
}

/** The resource that runs a step: a local command, or a remote one when the stack has build hosts. */
export type StepCommandResource = command.local.Command | command.remote.Command;

export interface StepCommandArgs {
  /** The step's definition: its kind, version, argument check and the host capabilities it needs. */
  step: Pick<StepDefinition<unknown>, "kind" | "version" | "parseArgs" | "needs">;
  /** Image the step belongs to. */
  image: string;
  /** Normalized step arguments; they are part of the key. */
  args: Json;
  /** Role → path (absolute, or relative to the project directory) of every file the step reads. */
  files?: Record<string, string>;
  /** Role → step whose artifact this one reads. */
  parents?: Record<string, BuiltStep>;
}

/**
 * Creates the command that runs `antidote-images step` for one step. Its key is the command's replacement trigger:
 * a changed key rebuilds the step, an unchanged one runs nothing. The spec on stdin holds only key inputs, so a
 * preview shows a change exactly when the key changes.
 */
export function stepCommand(parent: pulumi.Resource, name: string, args: StepCommandArgs): BuiltStep {
  try {
    args.step.parseArgs(args.args);
  } catch (err) {
    const where = args.image === name ? name : `${args.image}: ${name}`;
    if (err instanceof StepArgsError) throw new Error(`${where}: bad argument ${err.message}`);
    throw err;
  }
  const files = Object.fromEntries(
    Object.entries(args.files ?? {}).map(([role, file]) => [
      role,
      path.relative(process.cwd(), path.resolve(file)),
    ]),
  );
  const parents = Object.fromEntries(Object.entries(args.parents ?? {}).map(([role, p]) => [role, p.key]));
  const key = stepKey({ kind: args.step.kind, version: args.step.version, args: args.args, files, parents });
  const spec: StepSpec = {
    kind: args.step.kind,
    name,
    image: args.image,
    args: args.args,
    files,
    parents,
    key,
  };
  const ancestors: Record<string, StepSpec> = {};
  for (const parent of Object.values(args.parents ?? {})) {
    Object.assign(ancestors, parent.ancestors, { [parent.key]: parent.spec });
  }
  const settings = projectSettings();
  const common = {
    stdin: JSON.stringify(Object.keys(ancestors).length > 0 ? { ...spec, ancestors } : spec),
    triggers: [key],
    logging: "stderr" as const,
    addPreviousOutputInEnv: false,
  };
  const options = { parent, dependsOn: Object.values(args.parents ?? {}).map((p) => p.command) };
  let cmd: StepCommandResource;
  if (settings.buildHosts.length > 0) {
    const host = assignHost(key, settings.buildHosts, args.step.needs ?? [], `${args.image}: ${name}`);
    cmd = new command.remote.Command(
      `${name}-build`,
      {
        ...common,
        connection: {
          host: host.host,
          port: host.port,
          user: host.user,
          privateKey: settings.buildHostKey,
          hostKey: host.hostKey,
          perDialTimeout: host.dialTimeout,
          // One attempt: an unreachable host fails its steps within the dial timeout, naming the host.
          dialErrorLimit: 1,
        },
        create: remoteStepCommand(host, settings.sharedStore),
      },
      options,
    );
  } else {
    const environment = {
      ...(settings.store ? { ANTIDOTE_STORE: settings.store } : {}),
      ...(settings.sharedStore ? { ANTIDOTE_SHARED_STORE: settings.sharedStore } : {}),
      ...(settings.cacheStore ? { ANTIDOTE_CACHE_STORE: settings.cacheStore } : {}),
    };
    cmd = new command.local.Command(
      `${name}-build`,
      {
        ...common,
        create: `node ${CLI} step`,
        environment: Object.keys(environment).length > 0 ? environment : undefined,
      },
      options,
    );
  }
  const result = cmd.stdout.apply((stdout) => parseStepResult(stdout, name));
  return { stepName: name, key, command: cmd, result, spec, ancestors };
}

/** Base of every component that is one build step: it exposes the step's key, command and result. */
export abstract class StepComponent extends pulumi.ComponentResource implements BuiltStep {
  stepName!: string;
  key!: string;
  command!: StepCommandResource;
  result!: pulumi.Output<StepResult>;
  spec!: StepSpec;
  ancestors!: Record<string, StepSpec>;

  /** Creates the step's command as a child named `${name}-build`. */
  protected buildStep(name: string, args: StepCommandArgs): void {
    ({
      stepName: this.stepName,
      key: this.key,
      command: this.command,
      result: this.result,
      spec: this.spec,
      ancestors: this.ancestors,
    } = stepCommand(this, name, args));
  }

  /** Registers the component's outputs, once, at the end of its constructor: the step's key and result, and more. */
  protected registerStepOutputs(more: pulumi.Inputs = {}): void {
    this.registerOutputs({ key: this.key, result: this.result, ...more });
  }
}

/** Parses the `step` command's stdout: exactly one JSON line. */
export function parseStepResult(stdout: string, name: string): StepResult {
  const line = stdout.trim();
  try {
    return JSON.parse(line) as StepResult;
  } catch {
    throw new Error(
      `${name}: the step command printed no result line (stdout: ${JSON.stringify(line.slice(0, 200))})`,
    );
  }
}
