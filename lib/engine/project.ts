import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";

/** What `Pulumi.yaml` says about running the program, read as the Pulumi CLI reads it. */
export interface PulumiProject {
  /** The project directory (holds `Pulumi.yaml`). */
  root: string;
  name: string;
  /**
   * The program's entry point relative to `root` (`main`). Without one the language host passes `.`, and the SDK
   * takes `package.json`'s `exports`, else its `main`.
   * @default "."
   */
  main: string;
  /** Where `Pulumi.<stack>.yaml` files live. @default the project directory */
  stackConfigDir: string;
  /** `runtime.options.typescript`: load the program through ts-node. @default true */
  typescript: boolean;
  /** `runtime.options.tsconfig`: the tsconfig ts-node uses. @default none (the SDK's `tsconfig.json`) */
  tsconfig?: string;
  /** `runtime.options.nodeargs`: extra arguments to node. @default none */
  nodeargs: string[];
}

export function readProject(root: string): PulumiProject {
  const file = path.join(root, "Pulumi.yaml");
  const doc = parse(fs.readFileSync(file, "utf8")) as {
    name?: unknown;
    main?: unknown;
    stackConfigDir?: unknown;
    runtime?: string | { name?: string; options?: Record<string, unknown> };
  };
  if (typeof doc?.name !== "string") throw new Error(`${file}: expected a project name, got none`);
  const runtime = typeof doc.runtime === "object" ? doc.runtime : { name: doc.runtime };
  if (runtime?.name !== "nodejs") {
    throw new Error(`${file}: runtime: expected nodejs, got ${JSON.stringify(runtime?.name)}`);
  }
  const options = runtime.options ?? {};
  return {
    root,
    name: doc.name,
    main: typeof doc.main === "string" && doc.main !== "" ? doc.main : ".",
    stackConfigDir: path.join(root, typeof doc.stackConfigDir === "string" ? doc.stackConfigDir : "."),
    typescript: options.typescript !== false,
    tsconfig: typeof options.tsconfig === "string" ? options.tsconfig : undefined,
    nodeargs: typeof options.nodeargs === "string" ? options.nodeargs.split(/\s+/).filter(Boolean) : [],
  };
}
