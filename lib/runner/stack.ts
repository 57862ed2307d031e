import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { CONFIG_NAMESPACE } from "../config";
import { defaultStoreDir, LocalStore } from "../store/local";

/** The Pulumi project a runner works on: its directory, name, and the stack's configuration. */
export interface StackContext {
  root: string;
  project: string;
  stack: string;
  /** Flat Pulumi config (`namespace:key` → string; structured values as JSON). */
  config: Record<string, string>;
  /** Keys whose values are `secure:` ciphertext, which only the Pulumi CLI can decrypt. */
  secureKeys: string[];
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

/** Reads `Pulumi.yaml` and `<stackConfigDir>/Pulumi.<stack>.yaml`, as the Pulumi CLI would. */
export function loadStack(root: string, stack: string): StackContext {
  const project = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as {
    name: string;
    stackConfigDir?: string;
  };
  const configDir = path.join(root, project.stackConfigDir ?? ".");
  const file = path.join(configDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) {
    const known = fs
      .readdirSync(configDir)
      .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
      .filter((s): s is string => s !== undefined && s !== undefined);
    throw new Error(
      `no stack '${stack}' (no ${path.relative(root, file)}); stacks: ${known.join(", ") || "none"}`,
    );
  }
  const doc = (parse(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const config: Record<string, string> = {};
  const secureKeys: string[] = [];
  for (const [rawKey, value] of Object.entries(doc.config ?? {})) {
    const key = rawKey.includes(":") ? rawKey : `${project.name}:${rawKey}`;
    if (value !== null && typeof value === "object" && "secure" in value) {
      secureKeys.push(key);
      continue;
    }
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return { root, project: project.name, stack, config, secureKeys };
}

/** The artifact store a stack's steps use: its `antidote-images:store` config, else the default. */
export function stackStore(root: string, stack: string): LocalStore {
  const configured = loadStack(root, stack).config[`${CONFIG_NAMESPACE}:store`];
  return new LocalStore(configured ? path.resolve(root, configured) : defaultStoreDir());
}
