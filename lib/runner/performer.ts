/** How the runner performs one resource type of a provider (docker, gcp): what `pulumi up` does with that provider. */
export interface ResourcePerformer {
  /** Short name for the run's records, e.g. `docker push`. */
  kind: string;
  /** The output properties the provider computes (unknown until it has run). */
  computed: readonly string[];
  /** What a resource is about (an image's repository, an object's gs:// name), for the run's records. */
  describe(inputs: Record<string, unknown>): string;
  /** Does it for real, on inputs whose secrets are revealed. Throws with a message for the run's report. */
  perform(inputs: Record<string, unknown>, options?: PerformOptions): Promise<Performed>;
}

export interface PerformOptions {
  /** The resource's `customTimeouts.create`. @default the provider's default, 20 minutes */
  timeoutMs?: number;
  /** The inputs (secrets revealed) of the explicit provider the resource names. @default none: the default provider */
  provider?: Record<string, unknown>;
}

/** A provider's default create timeout, docker's and gcp's alike (terraform's default for a resource without its own). */
export const PROVIDER_TIMEOUT_MS = 20 * 60_000;

/** A performed resource: its computed outputs, and whether anything changed (a tag moved, a layer was uploaded). */
export interface Performed {
  outputs: Record<string, unknown>;
  changed: boolean;
}
