// The stack config keys of the project, Pulumi-free: the runner reads them without loading the SDK.

/** The Pulumi configuration namespace of this project. */
export const CONFIG_NAMESPACE = "antidote-images";

/**
 * The project's secret config keys, and the environment variable each is read from where no Pulumi CLI decrypts
 * the stack file (the local runner; the program itself also reads `buildHostKey`'s).
 */
export const SECRET_CONFIG_ENV: Record<string, string> = {
  registryPassword: "ANTIDOTE_REGISTRY_PASSWORD",
  buildHostKey: "ANTIDOTE_BUILD_HOST_KEY",
};

/** How to set a secret: the Pulumi CLI command, and the variable the local runner reads instead. */
export function secretHint(key: string, stack?: string): string {
  const env = SECRET_CONFIG_ENV[key];
  return (
    `pulumi config set --secret ${CONFIG_NAMESPACE}:${key} <value>${stack ? ` --stack ${stack}` : ""}` +
    (env ? `; for antidote-images up/plan, $${env}` : "")
  );
}
