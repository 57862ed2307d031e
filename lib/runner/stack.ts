import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { CONFIG_NAMESPACE, SECRET_CONFIG_ENV } from "../config-keys";
import { readProject } from "../engine/project";
import { defaultStoreDir, LocalStore } from "../store/local";

/** The Pulumi project a runner works on: its directory, name, and the stack's configuration. */
export interface StackContext {
  root: string;
  project: string;
  stack: string;
  /** Flat Pulumi config (`namespace:key` → string; structured values as JSON), secrets in plain. */
  config: Record<string, string>;
  /** Keys of `config` that are secrets: the program gets them as secret Outputs, as under the Pulumi CLI. */
  secretKeys: string[];
  /** The stack's config file, relative to `root` (for messages). */
  file: string;
}

/** Walks up from `start` to the directory holding `Pulumi.yaml`. */
export function findProjectRoot(start: string = process.cwd()): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
    if (path.dirname(dir) === dir) {
      throw new Error(
        `no Pulumi.yaml in ${path.resolve(start)} or any folder above it; run this inside the project`,
      );
    }
  }
}

/**
 * Reads `<stackConfigDir>/Pulumi.<stack>.yaml` as the Pulumi CLI would. Secrets come from the environment instead of
 * the file's `secure:` ciphertext (which only the CLI can decrypt): `$ANTIDOTE_REGISTRY_PASSWORD` and the others of
 * {@link SECRET_CONFIG_ENV}. A `secure:` value whose variable is unset is an error naming the variable.
 */
export function loadStack(root: string, stack: string, env: NodeJS.ProcessEnv = process.env): StackContext {
  const project = readProject(root);
  const file = path.join(project.stackConfigDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) {
    const known = fs
      .readdirSync(project.stackConfigDir)
      .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
      .filter((s): s is string => s !== undefined);
    throw new Error(
      `no stack '${stack}' (no ${path.relative(root, file)}); stacks: ${known.join(", ") || "none"}`,
    );
  }
  const doc = (parse(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  const secretFromEnv = (key: string): string | undefined => {
    const [namespace, name] = key.split(":");
    const variable = namespace === CONFIG_NAMESPACE ? SECRET_CONFIG_ENV[name] : undefined;
    return variable ? env[variable] || undefined : undefined;
  };
  for (const [rawKey, value] of Object.entries(doc.config ?? {})) {
    const key = rawKey.includes(":") ? rawKey : `${project.name}:${rawKey}`;
    if (value !== null && typeof value === "object" && "secure" in value) {
      const plain = secretFromEnv(key);
      if (plain === undefined) {
        const variable = SECRET_CONFIG_ENV[key.split(":")[1]];
        throw new Error(
          `stack '${stack}': ${key} is a secret (secure: in ${path.relative(root, file)}), which only the Pulumi CLI ` +
            `can decrypt; ${variable ? `give it to antidote-images as $${variable}` : "this runner has no variable for it"}`,
        );
      }
      config[key] = plain;
      secretKeys.push(key);
      continue;
    }
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  // A secret the file does not hold (a fresh checkout of the nightly stack) is taken from the environment too.
  for (const [name, variable] of Object.entries(SECRET_CONFIG_ENV)) {
    const key = `${CONFIG_NAMESPACE}:${name}`;
    if (!(key in config) && env[variable]) {
      config[key] = env[variable];
      secretKeys.push(key);
    }
  }
  return { root, project: project.name, stack, config, secretKeys, file: path.relative(root, file) };
}

/**
 * Sets `key=value` settings (`--config`) over the stack file's, for this run only: unlike `pulumi up --config`, which
 * also writes them into the stack file, the file stays as it is. A key without a namespace is the project's.
 * Structured values are given as JSON, as the file's are held. Secrets are refused: a command line is visible to
 * every user of the machine; they come from their variables.
 */
export function overrideConfig(stack: StackContext, settings: string[]): void {
  for (const setting of settings) {
    const eq = setting.indexOf("=");
    if (eq <= 0) throw new Error(`--config ${setting}: expected key=value`);
    const name = setting.slice(0, eq);
    const key = name.includes(":") ? name : `${stack.project}:${name}`;
    const [namespace, short] = key.split(":");
    const variable = namespace === CONFIG_NAMESPACE ? SECRET_CONFIG_ENV[short] : undefined;
    if (variable) {
      throw new Error(
        `--config ${key}: a secret is never given on the command line (every user of the machine sees it); ` +
          `set $${variable}`,
      );
    }
    stack.config[key] = setting.slice(eq + 1);
  }
}

/** The artifact store a stack's steps use: its `antidote-images:store` config, else the default. */
export function stackStore(root: string, stack: string): LocalStore {
  return openStackStore(loadStack(root, stack));
}

/**
 * Opens (creating it if needed) the store a stack's steps use: its `antidote-images:store` config, else
 * `$ANTIDOTE_STORE`, else the default. A path that cannot be a store is an error naming where it came from.
 */
export function openStackStore(stack: StackContext, env: NodeJS.ProcessEnv = process.env): LocalStore {
  const configured = stack.config[`${CONFIG_NAMESPACE}:store`];
  const source = configured
    ? `${CONFIG_NAMESPACE}:store (${stack.file})`
    : env.ANTIDOTE_STORE
      ? "$ANTIDOTE_STORE"
      : `the default store (${CONFIG_NAMESPACE}:store and $ANTIDOTE_STORE unset)`;
  try {
    return new LocalStore(configured ? path.resolve(stack.root, configured) : defaultStoreDir(env));
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`);
  }
}
