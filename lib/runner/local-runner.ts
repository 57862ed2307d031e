import * as path from "path";
import { CONFIG_NAMESPACE } from "../config-keys";
import { runLanguageHost } from "../engine/language-host";
import { Registration, RegistrationResponse } from "../engine/monitor";
import { containsUnknown, reveal, UNKNOWN } from "../engine/properties";
import { BuildHost, parseBuildHosts } from "../remote/hosts";
import { diffSummaries, InputChange, summarizeInputs } from "../keys";
import { killGroup, spawnChild } from "../exec";
import { credentialsDir } from "./credentials-dir";
import { resourcePerformers } from "./docker-resources";
import { ResourcePerformer } from "./performer";
import { failureFromOutput, formatFailure, startsFailureReport, stepSubject } from "../steps/failure";
import { stepDefinitions } from "../steps/registry";
import { runStep } from "../steps/run";
import { StepResult, StepSpec } from "../steps/step";
import { DEFAULT_JOBS, JOBS_ENV } from "../store/job-slots";
import { defaultStoreDir, LocalStore } from "../store/local";
import { Semaphore } from "./semaphore";
import { describeConnection, RemoteConnection, sshArgv } from "./ssh";
import { readProject } from "../engine/project";
import { loadStack, openStackStore, overrideConfig } from "./stack";

/** Where a step stands in a run. */
export type StepStatus = "queued" | "building" | "cached" | "built" | "failed" | "skipped" | "would-build";

export interface StepRecord {
  /** Logical step name (e.g. `frr-rootfs`). */
  name: string;
  image: string;
  kind: string;
  key: string;
  status: StepStatus;
  /** Wall time of the step's command. */
  elapsedMs?: number;
  result?: StepResult;
  /** Why the step failed or was skipped. */
  error?: string;
  /** `plan`: why the step would build. */
  reason?: string;
  /** `plan`: the inputs that moved since the step's last recorded build. */
  changes?: InputChange[];
  /** `plan`: role → path (relative to the project) of the files the step reads, for showing how they changed. */
  files?: Record<string, string>;
}

export type RunEvent =
  | { type: "step"; record: StepRecord }
  | { type: "progress"; record: StepRecord; line: string }
  /** Something the program printed or logged (a warning, its console output). */
  | { type: "log"; severity: "info" | "warning"; message: string };

export interface RunOptions {
  /** Project directory (holds Pulumi.yaml and index.ts). */
  root: string;
  stack: string;
  /** `up` performs every resource's create; `plan` only says what `up` would do. */
  mode: "up" | "plan";
  /** Only these images (and what they build on). @default every image */
  images?: string[];
  /** Steps run at once. @default 2 */
  jobs?: number;
  /** `key=value` settings over the stack file's, for this run only ({@link overrideConfig}). @default [] */
  config?: string[];
  onEvent?: (event: RunEvent) => void;
  /** Stops the run: running steps are sent SIGTERM, queued ones are skipped. */
  signal?: AbortSignal;
}

export interface RunReport {
  stack: string;
  mode: "up" | "plan";
  steps: StepRecord[];
  /** Resources the runner could not perform, by type and name. */
  unsupported: string[];
  /** The program's stack outputs (unknown values left out). */
  outputs: Record<string, unknown>;
  wallMs: number;
}

/**
 * Runs the Pulumi program the way the Pulumi CLI does — the SDK's language-host entry in a child process, speaking
 * the engine's gRPC protocol to this process — and performs each registered resource for real: a step command runs
 * `antidote-images step` exactly as the command provider would, docker tags and pushes run with the docker CLI.
 * Resources come in dependency order (the SDK registers a resource once its dependencies are created); `--jobs` and
 * each build host's capacity bound how many run at once; a failure fails only what depends on it (`pulumi up
 * --continue-on-error`). `plan` is the same program as a dry run (`pulumi preview`), answered from the store.
 */
export async function runProgram(options: RunOptions): Promise<RunReport> {
  const started = Date.now();
  const stack = loadStack(options.root, options.stack);
  overrideConfig(stack, options.config ?? []);
  // A store path that cannot be a store fails here, naming its config key, not inside the program's registrations.
  openStackStore(stack);
  if (options.images && options.images.length > 0) {
    stack.config[`${CONFIG_NAMESPACE}:images`] = JSON.stringify(options.images);
  }
  const jobs = options.jobs ?? DEFAULT_JOBS;
  const records = new Map<string, StepRecord>();
  const failedKeys = new Set<string>();
  /** Resources that failed or were skipped: what depends on them is skipped, as the engine does. */
  const failedUrns = new Map<string, StepRecord>();
  const unsupported: string[] = [];
  /** Errors the program reported: once there is one, nothing new starts (the engine stops launching too). */
  const programErrors: string[] = [];
  /** `plan`: resources that would build; what depends on them would too. */
  const wouldBuild = new Set<string>();
  /** Explicit providers by reference, with their inputs. */
  const providers = new Map<string, Record<string, unknown>>();
  const semaphore = new Semaphore(jobs);
  const buildHosts = parseBuildHosts(parseJson(stack.config[`${CONFIG_NAMESPACE}:buildHosts`]));
  /** Per build host (by connection): its configured name and a semaphore of its capacity. */
  const hostSlots = new Map<string, { host: BuildHost | undefined; semaphore: Semaphore }>();
  const slotsOf = (connection: RemoteConnection) => {
    const id = describeConnection(connection);
    let slots = hostSlots.get(id);
    if (!slots) {
      const host = buildHosts.find(
        (h) => h.host === connection.host && h.port === (connection.port ?? 22) && h.user === connection.user,
      );
      slots = { host, semaphore: new Semaphore(host?.capacity ?? 1) };
      hostSlots.set(id, slots);
    }
    return slots;
  };
  // Key and known-hosts files for ssh, private to this run.
  const { dir: secrets, remove: removeSecrets } = credentialsDir("antidote-ssh");
  const running = new Set<number>();
  options.signal?.addEventListener("abort", () => running.forEach((pgid) => killGroup(pgid, "SIGTERM")));
  const emit = (event: RunEvent) => options.onEvent?.(event);
  const update = (record: StepRecord, patch: Partial<StepRecord>) => {
    Object.assign(record, patch);
    emit({ type: "step", record });
  };

  /**
   * Runs one command resource and answers with its stdout, or undefined when it did not build (failed, skipped, or
   * would build in a plan). A step's record says what happened; a failure never throws into the engine.
   */
  const perform = async (
    spec: StepSpec,
    inputs: CommandInputs,
    isStep: boolean,
    dependencies: string[],
  ): Promise<string | undefined> => {
    const record: StepRecord = {
      name: spec.name,
      image: spec.image,
      kind: spec.kind,
      key: spec.key,
      status: "queued",
    };
    records.set(spec.name, record);
    const skipped = skipReason(dependencies, spec.parents);
    if (skipped) {
      update(record, { status: "skipped", error: skipped });
      return undefined;
    }
    if (options.mode === "plan") {
      if (isStep) return planStep(spec, inputs, record);
      update(record, { status: "would-build", reason: "not a build step: runs on every up" });
      return undefined;
    }
    emit({ type: "step", record });
    const cached = isStep ? await cachedLocally(spec, inputs) : undefined;
    if (cached) {
      update(record, { status: "cached", elapsedMs: cached.elapsedMs, result: cached });
      return JSON.stringify(cached) + "\n";
    }
    const slots = inputs.connection ? slotsOf(inputs.connection) : undefined;
    return (slots?.semaphore ?? semaphore).run(async () => {
      const stopped = stopReason();
      if (stopped) {
        update(record, { status: "skipped", error: stopped });
        return undefined;
      }
      const begun = Date.now();
      update(record, { status: "building" });
      let reportingFailure = false;
      const outcome = await runCommand(inputs, options.root, secrets, running, jobs, (line) => {
        // The step command's failure report is shown once, from the record; it is not progress.
        reportingFailure ||= startsFailureReport(line);
        if (!reportingFailure) emit({ type: "progress", record, line });
      });
      const elapsedMs = Date.now() - begun;
      if (outcome.code !== 0) {
        const failure = failureFromOutput(outcome.stderr, stepSubject(spec));
        let error = failure.headline || `exit status ${outcome.code}`;
        if (inputs.connection) {
          const host = `build host ${slots?.host?.name ?? "?"} (${describeConnection(inputs.connection)})`;
          // ssh itself exits 255 (the step command never does): the host could not be reached or refused us.
          error =
            outcome.code === 255
              ? `${host} is unreachable or refused the connection: ${error}`
              : `on ${host}: ${error}`;
        }
        update(record, {
          status: "failed",
          elapsedMs,
          error: formatFailure({ ...failure, headline: error }, ""),
        });
        return undefined;
      }
      if (!isStep) {
        update(record, { status: "built", elapsedMs });
        return outcome.stdout;
      }
      const result = JSON.parse(outcome.stdout.trim().split("\n").pop() ?? "") as StepResult;
      update(record, { status: result.cached ? "cached" : "built", elapsedMs, result });
      return outcome.stdout;
    });
  };

  /**
   * A local step whose artifact the store already has, answered in-process with what its command would print:
   * starting the command (Node and the compiler) costs seconds per step, finding the artifact milliseconds. Anything
   * else (a miss, a shared or remote store, a failed check) goes to the command, which builds or reports it as usual.
   */
  const cachedLocally = async (spec: StepSpec, inputs: CommandInputs): Promise<StepResult | undefined> => {
    if (inputs.connection || inputs.environment?.ANTIDOTE_SHARED_STORE) return undefined;
    const store = new LocalStore(storeDirFor(inputs, options.root));
    return (await store.has(spec.key)) ? storedResult(spec, inputs, store) : undefined;
  };

  /** The result of a step `store` has, through the same runStep (it checks the key against the inputs). */
  const storedResult = async (
    spec: StepSpec,
    inputs: CommandInputs,
    store: LocalStore,
  ): Promise<StepResult | undefined> => {
    try {
      const result = await runStep(spec, {
        store,
        definitions: stepDefinitions,
        root: inputs.dir ? path.resolve(options.root, inputs.dir) : options.root,
        progress: () => {},
        restore: options.mode === "up",
      });
      return result.cached ? result : undefined;
    } catch {
      return undefined;
    }
  };

  /**
   * Performs a publishing resource (docker tag, push): its output state, or undefined when it did not happen (what
   * it publishes was not built, or it failed).
   */
  const performResource = async (
    name: string,
    inputs: Record<string, unknown>,
    performer: ResourcePerformer,
    registration: Registration,
  ): Promise<Record<string, unknown> | undefined> => {
    const unknownInputs = containsUnknown(inputs);
    const record: StepRecord = {
      name,
      image: unknownInputs ? "-" : performer.describe(inputs),
      kind: performer.kind,
      key: `${performer.kind}:${name}`,
      status: "queued",
    };
    records.set(name, record);
    // In a plan, unknown inputs mean what it publishes would be built, and the publication would follow it; known
    // inputs are those of the last up (as in a Pulumi preview, no diff): it publishes what was published.
    if (options.mode === "plan") {
      if (unknownInputs || registration.dependencies.some((urn) => wouldBuild.has(urn))) {
        update(record, { status: "would-build", reason: "what it publishes would be built" });
        return undefined;
      }
      update(record, { status: "cached" });
      return Object.fromEntries(performer.computed.map((k) => [k, UNKNOWN]));
    }
    const skipped =
      skipReason(registration.dependencies) ??
      (unknownInputs ? "what it publishes was not built" : undefined);
    if (skipped) {
      update(record, { status: "skipped", error: skipped });
      return undefined;
    }
    return semaphore.run(async () => {
      const stopped = stopReason();
      if (stopped) {
        update(record, { status: "skipped", error: stopped });
        return undefined;
      }
      const begun = Date.now();
      update(record, { status: "building" });
      try {
        const { outputs, changed } = await performer.perform(inputs, {
          timeoutMs: registration.customTimeouts.create,
          provider: registration.provider ? providers.get(registration.provider) : undefined,
        });
        update(record, { status: changed ? "built" : "cached", elapsedMs: Date.now() - begun });
        return outputs;
      } catch (err) {
        update(record, { status: "failed", elapsedMs: Date.now() - begun, error: (err as Error).message });
        return undefined;
      }
    });
  };

  const planStep = async (
    spec: StepSpec,
    inputs: CommandInputs,
    record: StepRecord,
  ): Promise<string | undefined> => {
    if (inputs.connection) {
      const reason = `runs on build host ${slotsOf(inputs.connection).host?.name ?? describeConnection(inputs.connection)}, whose store plan does not read`;
      update(record, { status: "would-build", reason, files: spec.files });
      return undefined;
    }
    const store = new LocalStore(storeDirFor(inputs, options.root));
    if (await store.has(spec.key)) {
      // Its result, as an up would print it: what depends on it (a publication) sees known inputs.
      const cached = await storedResult(spec, inputs, store);
      update(record, { status: "cached", result: cached });
      return cached ? JSON.stringify(cached) + "\n" : undefined;
    }
    const ref = await store.readRef(spec.name);
    const definition = stepDefinitions[spec.kind];
    let reason: string;
    let changes: InputChange[] | undefined;
    if (!ref) reason = "never built";
    else if (ref.key === spec.key) reason = "its artifact is no longer in the store";
    else if (!definition) reason = `unknown step kind '${spec.kind}'`;
    else {
      const now = summarizeInputs(
        {
          kind: spec.kind,
          version: definition.version,
          args: spec.args,
          files: spec.files,
          parents: spec.parents,
        },
        options.root,
      );
      changes = diffSummaries(ref.inputs, now);
      reason = changes.map(describeChange).join(", ") || "inputs changed";
    }
    update(record, { status: "would-build", reason, changes, files: spec.files });
    return undefined;
  };

  /** Why nothing new starts any more in an up: the run was stopped, or the program failed. */
  const stopReason = (): string | undefined =>
    options.mode !== "up"
      ? undefined
      : options.signal?.aborted
        ? "the run was stopped"
        : programErrors.length > 0
          ? NOT_STARTED
          : undefined;

  /**
   * Why a resource is not performed, if it is not: something it depends on failed or was skipped (the engine's
   * `--continue-on-error` rule), or the run was stopped, or the program failed. Names the step input that did not
   * build when there is one.
   */
  const skipReason = (dependencies: string[], parents: Record<string, string> = {}): string | undefined => {
    const stopped = stopReason();
    if (stopped) return stopped;
    const failedParent = Object.entries(parents).find(([, key]) => failedKeys.has(key));
    if (failedParent) return `its input '${failedParent[0]}' did not build`;
    const failed = dependencies.map((urn) => failedUrns.get(urn)).find(Boolean);
    return failed ? `${failed.name} did not build` : undefined;
  };

  /**
   * The engine's answer to one custom resource: performed (up) or looked up in the store (plan). One that failed or
   * was skipped is answered as such, with its outputs unknown, so the program skips what it feeds.
   */
  const register = async (registration: Registration): Promise<RegistrationResponse> => {
    try {
      return await answer(registration);
    } catch (err) {
      // An error thrown back over gRPC leaves the SDK's program hanging: the resource fails instead, and the run
      // reports why (the program's own errors arrive through the engine log).
      programErrors.push(`${registration.type} '${registration.name}': ${(err as Error).message}`);
      return { id: registration.name, outputs: registration.inputs, result: "fail" };
    }
  };

  const answer = async (registration: Registration): Promise<RegistrationResponse> => {
    const { type, name, inputs, dependencies } = registration;
    if (type.startsWith("pulumi:providers:")) {
      // A resource names its provider as `<urn>::<id>`.
      providers.set(`${registration.urn}::${name}`, reveal(inputs) as Record<string, unknown>);
      return { id: name, outputs: inputs };
    }
    const performer = resourcePerformers[type];
    let outputs: Record<string, unknown> | undefined;
    let recordName = name;
    if (type === "command:local:Command" || type === "command:remote:Command") {
      const commandInputs = reveal(inputs) as CommandInputs;
      const spec = parseSpec(commandInputs.stdin) ?? plainCommandSpec(name);
      recordName = spec.name;
      const stdout = await perform(spec, commandInputs, spec.kind !== "command", dependencies);
      outputs = { stdout: stdout ?? UNKNOWN, stderr: stdout === undefined ? UNKNOWN : "" };
    } else if (performer) {
      outputs = await performResource(
        name,
        reveal(inputs) as Record<string, unknown>,
        performer,
        registration,
      );
      outputs ??= Object.fromEntries(performer.computed.map((k) => [k, UNKNOWN]));
    } else {
      unsupported.push(`${type} (${name})`);
      return { id: name, outputs: inputs, result: "fail" };
    }
    const record = records.get(recordName);
    if (record?.status === "would-build") wouldBuild.add(registration.urn);
    if (record?.status === "failed" || record?.status === "skipped") {
      failedUrns.set(registration.urn, record);
      failedKeys.add(record.key);
      return {
        id: name,
        outputs: { ...inputs, ...outputs },
        result: record.status === "failed" ? "fail" : "skip",
      };
    }
    return { id: name, outputs: { ...inputs, ...outputs } };
  };

  let outputs: Record<string, unknown> = {};
  try {
    const project = readProject(options.root);
    const run = await runLanguageHost({
      project,
      stack: stack.stack,
      config: stack.config,
      secretKeys: stack.secretKeys,
      dryRun: options.mode === "plan",
      parallel: jobs,
      handler: {
        register,
        log: (severity, message) => {
          if (severity === "error") programErrors.push(stripAnsi(message));
          else if (severity === "warning" || severity === "info") emit({ type: "log", severity, message });
        },
      },
      onOutput: (line) => emit({ type: "log", severity: "info", message: line }),
      signal: options.signal,
    });
    unsupported.push(...run.server.unsupportedCalls.map((token) => `function ${token}`));
    if (run.exitCode !== 0 && programErrors.length === 0 && !options.signal?.aborted) {
      programErrors.push(
        `the program exited with status ${run.exitCode}: ${run.outputTail.slice(-5).join("\n") || "no output"}`,
      );
    }
    outputs = knownValues(run.server.stackOutputs()) as Record<string, unknown>;
  } finally {
    removeSecrets();
  }
  const report: RunReport = {
    stack: stack.stack,
    mode: options.mode,
    steps: [...records.values()],
    unsupported,
    outputs,
    wallMs: Date.now() - started,
  };
  if (programErrors.length > 0) throw new ProgramError(programErrors[0], report);
  return report;
}

/** Why a step did not run in an up whose program failed. */
const NOT_STARTED = "not started: the program failed";

/**
 * The program itself failed (a bad image description, an invalid argument). As under the engine, nothing started
 * after it reported the error and what was running finished; an up's message lists what was done and what was not
 * started, and `report` has every step.
 */
export class ProgramError extends Error {
  constructor(
    readonly cause: unknown,
    readonly report?: RunReport,
  ) {
    super(
      `the program failed: ${cause instanceof Error ? cause.message : String(cause)}` +
        (report?.mode === "up" ? failedRunOutline(report) : ""),
    );
  }
}

/** An up's steps when its program failed: those done (built, cached or failed) and those never started. */
function failedRunOutline(report: RunReport): string {
  const names = (statuses: StepStatus[], withStatus: boolean) =>
    report.steps
      .filter((s) => statuses.includes(s.status))
      .map((s) => (withStatus ? `${s.name} (${s.status})` : s.name))
      .join(", ") || "none";
  return (
    `\n  done: ${names(["built", "cached", "failed"], true)}` +
    `\n  not started: ${names(["queued", "skipped"], false)}`
  );
}

/** The inputs of a `command:local:Command` (or `command:remote:Command`, which has a connection) the runner uses. */
interface CommandInputs {
  create?: string;
  connection?: RemoteConnection;
  stdin?: string;
  dir?: string;
  environment?: Record<string, string>;
  interpreter?: string[];
}

/** A structured config value (stored as JSON), or undefined when unset. */
function parseJson(value: string | undefined): unknown {
  return value === undefined ? undefined : (JSON.parse(value) as unknown);
}

function parseSpec(stdin: string | undefined): StepSpec | undefined {
  if (!stdin) return undefined;
  try {
    const spec = JSON.parse(stdin) as StepSpec;
    return typeof spec.kind === "string" && typeof spec.key === "string" ? spec : undefined;
  } catch {
    return undefined;
  }
}

function storeDirFor(inputs: CommandInputs, root: string): string {
  const configured = inputs.environment?.ANTIDOTE_STORE;
  return configured ? path.resolve(root, configured) : defaultStoreDir();
}

function describeChange(change: InputChange): string {
  switch (change.what) {
    case "file":
      return change.from === undefined ? `new file ${change.name}` : `file ${change.name} changed`;
    case "arg":
      return `argument ${change.name}: ${change.from ?? "(unset)"} → ${change.to ?? "(unset)"}`;
    case "parent":
      return `input ${change.name} changed`;
    default:
      return `${change.what} ${change.from} → ${change.to}`;
  }
}

interface CommandOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command resource's `create` as the command provider does: a local one through its interpreter, in `dir`; a
 * remote one over SSH on its connection's host (key and known-hosts files go to `secrets`).
 */
function runCommand(
  inputs: CommandInputs,
  root: string,
  secrets: string,
  running: Set<number>,
  jobs: number,
  onStderrLine: (line: string) => void,
): Promise<CommandOutcome> {
  const interpreter =
    inputs.interpreter && inputs.interpreter.length > 0 ? inputs.interpreter : ["/bin/sh", "-c"];
  const argv = inputs.connection
    ? sshArgv(inputs.connection, inputs.create ?? "true", secrets)
    : [...interpreter, inputs.create ?? "true"];
  return new Promise((resolve) => {
    const child = spawnChild(argv[0], argv.slice(1), {
      cwd: inputs.dir ? path.resolve(root, inputs.dir) : root,
      // The machine-wide job limit the steps take a slot from follows --jobs.
      env: { ...process.env, [JOBS_ENV]: String(jobs), ...inputs.environment },
      stdio: ["pipe", "pipe", "pipe"],
    });
    if (child.pid !== undefined) running.add(child.pid);
    const stdout: Buffer[] = [];
    let stderr = "";
    let partial = "";
    child.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      stderr += text;
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      lines.filter((l) => l.trim()).forEach(onStderrLine);
    });
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(inputs.stdin ?? "");
    const finish = (code: number) => {
      if (child.pid !== undefined) running.delete(child.pid);
      resolve({ code, stdout: Buffer.concat(stdout).toString("utf8"), stderr });
    };
    child.on("error", (err) => {
      stderr += `could not start ${argv[0]}: ${err.message}\n`;
      finish(127);
    });
    child.on("close", (code, signal) => finish(code ?? (signal ? 128 : 1)));
  });
}

/** A record for a command resource that is not a build step: it has no key and no parents. */
function plainCommandSpec(name: string): StepSpec {
  return { kind: "command", name, image: "-", args: null, files: {}, parents: {}, key: `command:${name}` };
}

/** A value without its unknown parts (what a preview or a failed step left unknown); secrets stay wrapped. */
function knownValues(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((v) => v !== UNKNOWN).map(knownValues);
  if (value === null || typeof value !== "object" || value.constructor !== Object) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== UNKNOWN)
      .map(([k, v]) => [k, knownValues(v)]),
  );
}

/** The text of a diagnostic without terminal colours (the SDK colours the errors it reports). */
function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex -- the escape character is what is being removed
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}
