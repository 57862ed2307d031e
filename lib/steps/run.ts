import * as path from "path";
import { keyOfSummary, summarizeInputs } from "../keys";
import { Artifact, ArtifactStore } from "../store/store";
import { acquireJobSlot, jobLimit, JOBS_ENV } from "../store/job-slots";
import { ExecError } from "../exec";
import { LOG_LINES_SEARCHED, stepSubject, summarizeFailure } from "./failure";
import { progressToStderr, StepLog, tailOfFile } from "./log";
import { StepArgsError, StepDefinition, StepResult, StepSpec } from "./step";

/** A failed step: the message names the image, the step and the cause; the log lines that show it and the log's
 * path come with it ({@link summarizeFailure}). */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly log?: string,
    readonly excerpt: string[] = [],
  ) {
    super(message);
  }
}

export interface RunStepOptions {
  store: ArtifactStore;
  /** Step kind → implementation. */
  definitions: Record<string, StepDefinition<unknown>>;
  /** Directory that relative file paths in the spec are resolved against. @default process.cwd() */
  root?: string;
  signal?: AbortSignal;
  /** Receives short progress lines. @default stderr */
  progress?: (line: string) => void;
  /** Put back what a cached artifact stands for outside the store ({@link StepDefinition.restore}); a plan does
   * not. @default true */
  restore?: boolean;
}

/**
 * The artifact of a step's input. One the store lost (a new build host, a pruned store) while the program still
 * names it is built again from its recorded spec; without one, the error names the input and the command that
 * builds it.
 */
async function parentArtifact(
  spec: StepSpec,
  role: string,
  key: string,
  options: RunStepOptions,
): Promise<Artifact> {
  const found = await options.store.get(key);
  if (found) return found;
  const recorded = spec.ancestors?.[key];
  if (!recorded) {
    throw new StepFailure(
      `${spec.image}: step ${spec.name} (${spec.kind}): its input '${role}' (artifact ${key}) is not in the store ` +
        `${options.store.location}; build it with 'antidote-images up ${spec.image}' on this host ` +
        `(or 'pulumi up --replace <urn of its step>')`,
    );
  }
  (options.progress ?? progressToStderr)(
    `${spec.image}: ${spec.name}: input '${role}' (${recorded.name}) is not in the store: building it again`,
  );
  await runStep({ ...recorded, ancestors: spec.ancestors }, options);
  const built = await options.store.get(key);
  if (!built)
    throw new StepFailure(`${spec.image}: ${recorded.name} built, but the store has no artifact ${key}`);
  return built;
}

/** Builds one step from its spec, or finds it in the store. */
export async function runStep(spec: StepSpec, options: RunStepOptions): Promise<StepResult> {
  const started = Date.now();
  const root = options.root ?? process.cwd();
  const where = stepSubject(spec);
  const definition = options.definitions[spec.kind];
  if (!definition) {
    throw new StepFailure(
      `${where}: unknown step kind; known kinds: ${Object.keys(options.definitions).sort().join(", ")}`,
    );
  }
  let args: unknown;
  try {
    args = definition.parseArgs(spec.args);
  } catch (err) {
    if (err instanceof StepArgsError) throw new StepFailure(`${where}: bad argument ${err.message}`);
    throw err;
  }
  const inputs = summarizeInputs(
    {
      kind: spec.kind,
      version: definition.version,
      args: spec.args,
      files: spec.files,
      parents: spec.parents,
    },
    root,
  );
  const key = keyOfSummary(inputs);
  if (key !== spec.key) {
    throw new StepFailure(
      `${where}: its inputs changed after the program computed its key (expected ${spec.key}, inputs give ${key}); ` +
        `an input file was edited during the run, or the program and this command are different versions`,
    );
  }
  const files = Object.fromEntries(
    Object.entries(spec.files).map(([role, f]) => [role, path.resolve(root, f)]),
  );
  const signal = options.signal ?? new AbortController().signal;

  let logPath = options.store.logPath(key);
  try {
    const { artifact, cached } = await options.store.put(
      key,
      { kind: spec.kind, name: spec.name, image: spec.image, inputs, inputFiles: files },
      async (out, log) => {
        logPath = log;
        // Read only when building: a step the store has needs none of its inputs.
        const parents: Record<string, Artifact> = {};
        for (const [role, parentKey] of Object.entries(spec.parents)) {
          parents[role] = await parentArtifact(spec, role, parentKey, options);
        }
        const stepLog = new StepLog(log, signal, options.progress);
        // One of the machine's build slots (per store: a machine has one), however many steps were started at once.
        const releaseSlot = await acquireJobSlot(options.store.cacheDir("job-slots"), jobLimit(), {
          signal,
          onWait: (limit) =>
            stepLog.progress(
              `${spec.image}: ${spec.name}: waiting for a build slot (${limit} steps build at once here, $${JOBS_ENV})`,
            ),
        });
        // In the store's tmp/: removed by this process's reaper if it is killed, else by the next run.
        const work = options.store.scratchDir(`antidote-${spec.kind}-work`);
        stepLog.progress(`${spec.image}: ${spec.name}: building ${key.slice(0, 12)}`);
        try {
          return await definition.run({
            spec,
            args,
            files,
            parents,
            out,
            work: work.dir,
            log: stepLog,
            store: options.store,
            signal,
          });
        } finally {
          work.remove();
          releaseSlot();
        }
      },
    );
    if (cached && definition.restore && options.restore !== false) {
      await definition.restore(artifact, options.store);
    }
    const primary = artifact.meta.files[artifact.meta.primary];
    return {
      key,
      kind: spec.kind,
      name: spec.name,
      image: spec.image,
      cached,
      location: artifact.dir,
      primary: path.join(artifact.dir, artifact.meta.primary),
      sha256: primary.sha256,
      size: primary.size,
      log: artifact.meta.log,
      elapsedMs: Date.now() - started,
      outputs: artifact.meta.outputs,
    };
  } catch (err) {
    if (err instanceof StepFailure) throw err;
    const log = err instanceof ExecError ? err.log : logPath;
    const failure = summarizeFailure(err as Error, tailOfFile(log, LOG_LINES_SEARCHED));
    const cause = signal.aborted ? "was interrupted" : `failed: ${failure.headline}`;
    throw new StepFailure(`${where} ${cause}`, log, failure.excerpt);
  }
}
