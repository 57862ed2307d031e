import * as pulumi from "@pulumi/pulumi";
import { BuildHost, parseBuildHosts } from "./remote/hosts";
import { CONFIG_NAMESPACE, SECRET_CONFIG_ENV, secretHint } from "./config-keys";
import { parseGsUrl } from "./store/gcs-bucket";

/**
 * Settings that every component reads from stack config (`antidote-images:<key>`). Each has an embedded default,
 * so a stack with no config at all builds locally.
 */
export interface ProjectSettings {
  /**
   * Artifact store directory, absolute or relative to the project directory.
   * @default `$ANTIDOTE_STORE`, else `~/.cache/antidote-images`
   */
  store?: string;
  /** Machines steps run on over SSH, instead of this one (docs/scale-out.md). @default [] */
  buildHosts: BuildHost[];
  /**
   * Private key for the build hosts: the secret `antidote-images:buildHostKey`, else `$ANTIDOTE_BUILD_HOST_KEY`.
   * @default none (required when there are build hosts)
   */
  buildHostKey?: pulumi.Output<string>;
  /** `gs://bucket/prefix` of the artifact store shared between build hosts. @default none: local stores only */
  sharedStore?: string;
  /**
   * `gs://bucket/prefix` of a shared store (the nightly's) that local steps read as a cache before building, never
   * writing it (docs/scale-out.md).
   * @default none: no cache
   */
  cacheStore?: string;
}

export function projectSettings(): ProjectSettings {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  const buildHosts = parseBuildHosts(config.getObject("buildHosts"));
  const envKey = process.env[SECRET_CONFIG_ENV.buildHostKey];
  const buildHostKey = config.getSecret("buildHostKey") ?? (envKey ? pulumi.secret(envKey) : undefined);
  if (buildHosts.length > 0 && !buildHostKey) {
    throw new Error(
      `${CONFIG_NAMESPACE}:buildHostKey: expected the build hosts' private key, got nothing; set it with ` +
        secretHint("buildHostKey", pulumi.getStack()),
    );
  }
  const sharedStore = config.get("sharedStore");
  if (sharedStore !== undefined) parseGsUrl(sharedStore);
  const cacheStore = config.get("cacheStore");
  if (cacheStore !== undefined) parseGsUrl(cacheStore, `${CONFIG_NAMESPACE}:cacheStore`);
  return { store: config.get("store"), buildHosts, buildHostKey, sharedStore, cacheStore };
}
