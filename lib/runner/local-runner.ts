import * as pulumi from "@pulumi/pulumi";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CONFIG_NAMESPACE } from "../config";
import { BuildHost, parseBuildHosts } from "../remote/hosts";
import { diffSummaries, InputChange, summarizeInputs } from "../keys";
import { killGroup } from "../steps/log";
import { ResourcePerformer, resourcePerformers } from "./docker-resources";
import { stepDefinitions } from "../steps/registry";
import { runStep } from "../steps/run";
import { StepResult, StepSpec } from "../steps/step";
import { defaultStoreDir, LocalStore } from "../store/local";
import { Semaphore } from "./semaphore";
import { describeConnection, RemoteConnection, sshArgv } from "./ssh";
import { loadStack, stackStore } from "./stack";

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
  | { type: "progress"; record: StepRecord; line: string };

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

/** Pulumi's marker for a value that is not known; applies on it are skipped, so nothing runs on a failed step. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/**
 * Runs the Pulumi program in this process under Pulumi's mock runtime and performs each resource for real:
 * a step command runs `antidote-images step` exactly as the Pulumi command provider would, following the
 * dependency graph with bounded parallelism. This is how authors and CI run the pipeline without the Pulumi CLI.
 */
export async function runProgram(options: RunOptions): Promise<RunReport> {
  const started = Date.now();
  const stack = loadStack(options.root, options.stack);
  if (options.images && options.images.length > 0) {
    stack.config[`${CONFIG_NAMESPACE}:images`] = JSON.stringify(options.images);
  }
  const records = new Map<string, StepRecord>();
  const failedKeys = new Set<string>();
  const unsupported: string[] = [];
  const semaphore = new Semaphore(options.jobs ?? 2);
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
  const secrets = fs.mkdtempSync(path.join(os.tmpdir(), "antidote-ssh-"));
  const running = new Set<number>();
  options.signal?.addEventListener("abort", () => running.forEach((pgid) => killGroup(pgid, "SIGTERM")));
  const emit = (event: RunEvent) => options.onEvent?.(event);
  const update = (record: StepRecord, patch: Partial<StepRecord>) => {
    Object.assign(record, patch);
    emit({ type: "step", record });
  };

  /** Runs one command resource; a step's record says what happened, and a failure never throws into Pulumi. */
  const perform = async (spec: StepSpec, inputs: CommandInputs, isStep: boolean): Promise<string> => {
    const record: StepRecord = {
      name: spec.name,
      image: spec.image,
      kind: spec.kind,
      key: spec.key,
      status: "queued",
    };
    records.set(spec.name, record);
    const failedParent = Object.entries(spec.parents).find(([, key]) => failedKeys.has(key));
    if (failedParent || options.signal?.aborted) {
      failedKeys.add(spec.key);
      update(record, {
        status: "skipped",
        error: failedParent ? `its input '${failedParent[0]}' did not build` : "the run was stopped",
      });
      return UNKNOWN;
    }
    if (options.mode === "plan") {
      if (isStep) return planStep(spec, inputs, record);
      update(record, { status: "would-build", reason: "not a build step: runs on every up" });
      return UNKNOWN;
    }
    emit({ type: "step", record });
    const cached = isStep ? await cachedLocally(spec, inputs) : undefined;
    if (cached) {
      update(record, { status: "cached", elapsedMs: cached.elapsedMs, result: cached });
      return JSON.stringify(cached) + "\n";
    }
    const slots = inputs.connection ? slotsOf(inputs.connection) : undefined;
    return (slots?.semaphore ?? semaphore).run(async () => {
      if (options.signal?.aborted) {
        failedKeys.add(spec.key);
        update(record, { status: "skipped", error: "the run was stopped" });
        return UNKNOWN;
      }
      const begun = Date.now();
      update(record, { status: "building" });
      const outcome = await runCommand(inputs, options.root, secrets, running, (line) => {
        emit({ type: "progress", record, line });
      });
      const elapsedMs = Date.now() - begun;
      if (outcome.code !== 0) {
        failedKeys.add(spec.key);
        let error = outcome.stderr.trim() || `exit status ${outcome.code}`;
        if (inputs.connection) {
          const host = `build host ${slots?.host?.name ?? "?"} (${describeConnection(inputs.connection)})`;
          // ssh itself exits 255 (the step command never does): the host could not be reached or refused us.
          error =
            outcome.code === 255
              ? `${host} is unreachable or refused the connection: ${error}`
              : `on ${host}: ${error}`;
        }
        update(record, { status: "failed", elapsedMs, error });
        return UNKNOWN;
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
      });
      return result.cached ? result : undefined;
    } catch {
      return undefined;
    }
  };

  /**
   * Performs a publishing resource (docker tag, push). One whose inputs are unknown (a step it needs failed or was
   * skipped) is skipped; a failure is recorded and its outputs answered as unknown, so what follows it is skipped too.
   */
  const performResource = async (
    name: string,
    inputs: Record<string, unknown>,
    performer: ResourcePerformer,
  ): Promise<Record<string, unknown>> => {
    const record: StepRecord = {
      name,
      image: Object.values(inputs).some(isUnknownInput) ? "-" : performer.describe(inputs),
      kind: performer.kind,
      key: `${performer.kind}:${name}`,
      status: "queued",
    };
    records.set(name, record);
    const unknownOutputs = Object.fromEntries(Object.keys(inputs).map((k) => [k, UNKNOWN]));
    // In a plan, unknown inputs mean what it publishes would be built, and the publication would follow it; known
    // inputs are those of the last up (as in a Pulumi preview, no diff): it publishes what was published.
    if (options.mode === "plan") {
      if (Object.values(inputs).some(isUnknownInput)) {
        update(record, { status: "would-build", reason: "what it publishes would be built" });
        return unknownOutputs;
      }
      update(record, { status: "cached" });
      return { ...unknownOutputs, ...inputs };
    }
    if (Object.values(inputs).some(isUnknownInput) || options.signal?.aborted) {
      update(record, { status: "skipped", error: "what it publishes was not built" });
      return unknownOutputs;
    }
    return semaphore.run(async () => {
      const begun = Date.now();
      update(record, { status: "building" });
      try {
        const { state, changed } = await performer.perform(inputs, {
          store: stackStore(options.root, options.stack),
        });
        update(record, { status: changed ? "built" : "cached", elapsedMs: Date.now() - begun });
        return state;
      } catch (err) {
        update(record, { status: "failed", elapsedMs: Date.now() - begun, error: (err as Error).message });
        return unknownOutputs;
      }
    });
  };

  const planStep = async (spec: StepSpec, inputs: CommandInputs, record: StepRecord): Promise<string> => {
    if (inputs.connection) {
      const reason = `runs on build host ${slotsOf(inputs.connection).host?.name ?? describeConnection(inputs.connection)}, whose store plan does not read`;
      update(record, { status: "would-build", reason, files: spec.files });
      return UNKNOWN;
    }
    const store = new LocalStore(storeDirFor(inputs, options.root));
    if (await store.has(spec.key)) {
      // Its result, as an up would print it: what depends on it (a publication) sees known inputs.
      const cached = await storedResult(spec, inputs, store);
      update(record, { status: "cached", result: cached });
      return cached ? JSON.stringify(cached) + "\n" : UNKNOWN;
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
    return UNKNOWN;
  };

  // Resources nothing exports (a moving tag's push) are still being performed when the program's outputs resolve.
  const inFlight = new Set<Promise<unknown>>();
  const tracked = <T>(work: Promise<T>): Promise<T> => {
    inFlight.add(work);
    return work.finally(() => inFlight.delete(work));
  };

  await pulumi.runtime.setMocks(
    {
      newResource: (resource) => tracked(newResource(resource)),
      call(call) {
        unsupported.push(`function ${call.token}`);
        return {};
      },
    },
    stack.project,
    stack.stack,
    true,
  );
  async function newResource(
    resource: pulumi.runtime.MockResourceArgs,
  ): Promise<{ id: string | undefined; state: Record<string, unknown> }> {
    if (!resource.custom) return { id: undefined, state: {} };
    if (resource.type.startsWith("pulumi:providers:")) return { id: resource.name, state: resource.inputs };
    if (resource.type === "command:local:Command" || resource.type === "command:remote:Command") {
      const inputs = revealSecrets(resource.inputs) as CommandInputs;
      const spec = parseSpec(inputs.stdin);
      const stdout = spec
        ? await perform(spec, inputs, true)
        : await perform(plainCommandSpec(resource.name), inputs, false);
      return { id: resource.name, state: { ...resource.inputs, stdout, stderr: "" } };
    }
    const performer = resourcePerformers[resource.type];
    if (performer) {
      return {
        id: resource.name,
        state: await performResource(resource.name, resource.inputs, performer),
      };
    }
    unsupported.push(`${resource.type} (${resource.name})`);
    return { id: resource.name, state: {} };
  }
  pulumi.runtime.setAllConfig(stack.config, []);

  const previousDir = process.cwd();
  process.chdir(options.root);
  let programExports: Record<string, unknown> = {};
  // The Pulumi runtime leaves a program's error behind as a second, unhandled rejection; it is reported once, below.
  const programErrors: unknown[] = [];
  const onRejection = (err: unknown) => programErrors.push(err);
  process.on("unhandledRejection", onRejection);
  try {
    forgetProgramModules(options.root);
    await pulumi.runtime.runInPulumiStack(async () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the program is loaded the way Pulumi loads it
      programExports = require(path.join(options.root, "index.ts")) as Record<string, unknown>;
      return programExports;
    });
  } catch (err) {
    programErrors.unshift(err);
  } finally {
    process.chdir(previousDir);
    setImmediate(() => process.off("unhandledRejection", onRejection));
  }
  while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  fs.rmSync(secrets, { recursive: true, force: true });
  if (programErrors.length > 0) throw new ProgramError(programErrors[0]);
  return {
    stack: stack.stack,
    mode: options.mode,
    steps: [...records.values()],
    unsupported,
    outputs: (await resolveOutputs(programExports)) as Record<string, unknown>,
    wallMs: Date.now() - started,
  };
}

/** The program itself failed (a bad image description, an invalid argument): nothing was built after it. */
export class ProgramError extends Error {
  constructor(readonly cause: unknown) {
    super(`the program failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
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

/** An input Pulumi does not know yet (in preview mode the mock monitor hands these over as `pulumi.unknown`). */
function isUnknownInput(value: unknown): boolean {
  if (pulumi.isUnknown(value) || value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(isUnknownInput);
  if (value !== null && typeof value === "object") return Object.values(value).some(isUnknownInput);
  return false;
}

/** The inputs with Pulumi's secret wrappers (the remote connection's key) replaced by their values. */
function revealSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealSecrets);
  if (value === null || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  if (record[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig)
    return revealSecrets(record.value);
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, revealSecrets(v)]));
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
  onStderrLine: (line: string) => void,
): Promise<CommandOutcome> {
  const interpreter =
    inputs.interpreter && inputs.interpreter.length > 0 ? inputs.interpreter : ["/bin/sh", "-c"];
  const argv = inputs.connection
    ? sshArgv(inputs.connection, inputs.create ?? "true", secrets)
    : [...interpreter, inputs.create ?? "true"];
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: inputs.dir ? path.resolve(root, inputs.dir) : root,
      env: { ...process.env, ...inputs.environment },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    if (child.pid !== undefined) running.add(child.pid);
    const stdout: Buffer[] = [];
    let stderr = "";
    let partial = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      stderr += text;
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      lines.filter((l) => l.trim()).forEach(onStderrLine);
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(inputs.stdin ?? "");
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

/** Drops the program's modules from Node's cache, so a second run in one process builds its resources anew. */
function forgetProgramModules(root: string): void {
  const nodeModules = path.join(root, "node_modules") + path.sep;
  for (const id of Object.keys(require.cache)) {
    if (id.startsWith(root + path.sep) && !id.startsWith(nodeModules)) {
      delete require.cache[id];
    }
  }
}

/** Replaces every Output in a value with what it resolved to; unknown values become undefined. */
async function resolveOutputs(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    return resolveOutputs(await (value as unknown as { promise(): Promise<unknown> }).promise());
  }
  if (value instanceof pulumi.Resource) return undefined;
  if (Array.isArray(value)) return Promise.all(value.map(resolveOutputs));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const resolved = await resolveOutputs(v);
      if (resolved !== undefined && resolved !== UNKNOWN) out[k] = resolved;
    }
    return out;
  }
  return value === UNKNOWN ? undefined : value;
}
