import * as pulumi from "@pulumi/pulumi";

/** The Pulumi configuration namespace of this project. */
export const CONFIG_NAMESPACE = "antidote-images";

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
}

export function projectSettings(): ProjectSettings {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  return { store: config.get("store") };
}
