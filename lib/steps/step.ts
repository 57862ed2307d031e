import { Json } from "../keys";
import { Artifact, ArtifactStore, BuildOutput } from "../store/store";
import { StepLog } from "./log";

/**
 * What the `step` command reads on stdin: everything a build needs, and the key the program computed for it.
 * File paths are relative to the project directory (the command's working directory).
 */
export interface StepSpec {
  kind: string;
  /** Logical name of the step, e.g. `frr-rootfs`. */
  name: string;
  /** Image the step belongs to, for messages and records. */
  image: string;
  args: Json;
  /** Role → path of every file the step reads. */
  files: Record<string, string>;
  /** Role → key of every artifact the step reads. */
  parents: Record<string, string>;
  /** The key the program computed; the step recomputes it and refuses to build on a mismatch. */
  key: string;
  /**
   * Key → spec of every step this one reads, directly or through its parents: what rebuilds a parent whose artifact
   * the store lost (a new build host, a pruned store) while Pulumi's state still records it as built. Not a key
   * input: the parent keys already cover it. @default none (a missing parent is an error)
   */
  ancestors?: Record<string, StepSpec>;
}

/** The one JSON line the `step` command prints on success. */
export interface StepResult {
  key: string;
  kind: string;
  name: string;
  image: string;
  /** True when the artifact was already in the store and nothing was built. */
  cached: boolean;
  /** Artifact directory in the store. */
  location: string;
  /** Absolute path of the primary output file. */
  primary: string;
  sha256: string;
  size: number;
  log: string;
  /** Time this invocation took, including the store lookup. */
  elapsedMs: number;
  outputs: Record<string, Json>;
}

/** What a step's `run` gets. */
export interface StepContext<A> {
  spec: StepSpec;
  /** Arguments after `parseArgs`. */
  args: A;
  /** Role → absolute path of every input file. */
  files: Record<string, string>;
  /** Role → finished artifact of every parent step. */
  parents: Record<string, Artifact>;
  /** Private directory that becomes the artifact when `run` succeeds. Write outputs here. */
  out: string;
  /** Scratch directory in the store's tmp/, removed after the step whatever happens (see ArtifactStore.scratchDir). */
  work: string;
  log: StepLog;
  store: ArtifactStore;
  /** Aborted on SIGTERM/SIGINT: stop, release what you hold, and throw. */
  signal: AbortSignal;
}

/** One kind of build step. Pulumi-free: it can be run and tested on its own. */
export interface StepDefinition<A = unknown> {
  kind: string;
  /** Bump when the implementation changes what it produces: every artifact of this kind rebuilds. */
  version: number;
  /** Build host capabilities the step needs, such as `kvm` (see docs/scale-out.md). @default [] */
  needs?: readonly string[];
  /** Checks and normalizes arguments; throws {@link StepArgsError} naming the field. */
  parseArgs(args: Json): A;
  /** Builds the artifact into `ctx.out`. Must clean up everything it holds (mounts, processes) on every path. */
  run(ctx: StepContext<A>): Promise<BuildOutput>;
  /**
   * Puts back what the artifact stands for outside the store, when the store answers the step (the container
   * step's image in dockerd, which a prune or another machine lacks). @default nothing to put back
   */
  restore?(artifact: Artifact, store: ArtifactStore): Promise<void>;
}

/** A bad step argument: names the field and what was expected. */
export class StepArgsError extends Error {
  constructor(
    readonly field: string,
    readonly expected: string,
    readonly got: unknown,
  ) {
    super(`${field}: expected ${expected}, got ${describe(got)}`);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Reads an object of arguments, failing with the field's name when it is not an object. */
export function argsObject(args: Json, field = "args"): Record<string, Json> {
  if (args === null || typeof args !== "object" || Array.isArray(args)) {
    throw new StepArgsError(field, "an object", args);
  }
  return args;
}
