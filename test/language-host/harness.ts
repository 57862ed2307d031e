import * as fs from "fs";
import * as path from "path";
import { LanguageHostResult, runLanguageHost } from "../../lib/engine/language-host";
import { Registration } from "../../lib/engine/monitor";
import { readProject } from "../../lib/engine/project";
import { loadStack } from "../../lib/runner/stack";
import { PROJECT_ROOT, tempDir } from "../helpers";

/**
 * `pulumi preview --stack <stack>` of a project, with this process as the engine: the program runs under the SDK's
 * language-host entry exactly as the CLI starts it, and every registration is answered as the engine previews a
 * create (the inputs back, everything the provider computes unknown). Nothing is performed.
 */
export async function preview(
  stack: string,
  options: {
    root?: string;
    /** Config on top of the stack file's (e.g. a store of the test's own). */
    config?: Record<string, string>;
    /** Environment the stack's secrets are read from (as `antidote-images up` reads them). */
    env?: NodeJS.ProcessEnv;
    /** The program's temporary directory (`TMPDIR`). @default the system's */
    tmpdir?: string;
  } = {},
): Promise<LanguageHostResult & { errors: string[] }> {
  const root = options.root ?? PROJECT_ROOT;
  const context = loadStack(root, stack, options.env ?? {});
  const errors: string[] = [];
  const result = await runLanguageHost({
    project: readProject(root),
    stack,
    config: { ...context.config, ...options.config },
    secretKeys: context.secretKeys,
    dryRun: true,
    env: options.tmpdir ? { TMPDIR: options.tmpdir } : undefined,
    handler: {
      register: async (registration) => ({ id: "", outputs: registration.inputs }),
      log: (severity, message) => severity === "error" && errors.push(message),
    },
  });
  return { ...result, errors };
}

/** The registrations of one type. */
export function ofType(registrations: Registration[], type: string): Registration[] {
  return registrations.filter((r) => r.type === type);
}

/**
 * A copy of the project (library, images and node_modules linked; Pulumi.yaml, package.json, index.ts, tsconfig and
 * stacks copied) whose files a test may change.
 */
export function projectCopy(): string {
  const root = tempDir("project");
  for (const link of ["lib", "bin", "images", "kernel", "node_modules"]) {
    fs.symlinkSync(path.join(PROJECT_ROOT, link), path.join(root, link));
  }
  for (const file of ["Pulumi.yaml", "package.json", "index.ts", "tsconfig.json"]) {
    fs.copyFileSync(path.join(PROJECT_ROOT, file), path.join(root, file));
  }
  fs.cpSync(path.join(PROJECT_ROOT, "stacks"), path.join(root, "stacks"), { recursive: true });
  return root;
}

/** Every file under `dir` (not node_modules or .git) with its size and modification time, to see what changed. */
export function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (at: string) => {
    for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
      if (entry.name === "node_modules" || entry.name === ".git") continue;
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const stat = fs.statSync(full);
        files.set(full, `${stat.size}:${stat.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return files;
}

/**
 * A throwaway project: the library, bin and node_modules linked, Pulumi.yaml, package.json, index.ts and tsconfig
 * copied, `images/<name>/<file>` written from `images`, and a `local` stack with `config` (keys without the
 * `antidote-images:` namespace).
 */
export function projectWith(
  images: Record<string, Record<string, string | Buffer>>,
  config: Record<string, string>,
): string {
  const root = tempDir("project");
  for (const link of ["lib", "bin", "node_modules"]) {
    fs.symlinkSync(path.join(PROJECT_ROOT, link), path.join(root, link));
  }
  for (const file of ["Pulumi.yaml", "package.json", "index.ts", "tsconfig.json"]) {
    fs.copyFileSync(path.join(PROJECT_ROOT, file), path.join(root, file));
  }
  for (const [image, files] of Object.entries(images)) {
    fs.mkdirSync(path.join(root, "images", image), { recursive: true });
    for (const [name, content] of Object.entries(files))
      fs.writeFileSync(path.join(root, "images", image, name), content);
  }
  fs.mkdirSync(path.join(root, "stacks"));
  const lines = Object.entries(config).map(
    ([key, value]) => `  antidote-images:${key}: ${JSON.stringify(value)}`,
  );
  fs.writeFileSync(path.join(root, "stacks", "Pulumi.local.yaml"), `config:\n${lines.join("\n")}\n`);
  return root;
}
