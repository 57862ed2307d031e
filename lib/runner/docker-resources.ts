import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ensureContainerImage } from "../steps/container";
import { docker, inspectImage, repoDigest, repositoryOf } from "../steps/docker";
import { ArtifactStore } from "../store/store";

/** Pulumi's wrapper of a secret input as the mock monitor hands it over. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";

/** An input's plain value. Secretness is lifted to the outermost object of an input, so unwrap at each level. */
function reveal<T>(value: unknown): T {
  if (value !== null && typeof value === "object" && SECRET_SIG_KEY in value) {
    return (value as unknown as { value: T }).value;
  }
  return value as T;
}

/** What a performer may need of the run. */
export interface PerformContext {
  /** The stack's artifact store. */
  store: ArtifactStore;
}

/** How the runner performs one resource type with the docker CLI: what `pulumi up` does with the docker provider. */
export interface ResourcePerformer {
  /** Short name for the run's records, e.g. `docker push`. */
  kind: string;
  /** The image (repository) a resource is about, for the run's records. */
  describe(inputs: Record<string, unknown>): string;
  /** Does it for real. Throws with a message for the run's report. */
  perform(inputs: Record<string, unknown>, context: PerformContext): Promise<Performed>;
}

/** A performed resource: its output state, and whether anything changed (a tag moved, a layer was uploaded). */
export interface Performed {
  state: Record<string, unknown>;
  changed: boolean;
}

interface TagInputs {
  sourceImage: string;
  targetImage: string;
}

interface RegistryImageInputs {
  name: string;
  authConfig?: { address: string; username: string; password: unknown };
}

/** `docker:index/tag:Tag`: `docker tag`. */
const tagPerformer: ResourcePerformer = {
  kind: "docker tag",
  describe: (inputs) => repositoryOf(String(inputs.targetImage)),
  async perform(raw, context) {
    const inputs = raw as unknown as TagInputs;
    let source = await inspectImage(inputs.sourceImage);
    // A lab image the store built but this dockerd lacks (another machine, a prune): built again from its artifact.
    const key = /^antidote-images\/[^:]+:([0-9a-f]{64})$/.exec(inputs.sourceImage)?.[1];
    if (!source && key) {
      await ensureContainerImage(context.store, key);
      source = await inspectImage(inputs.sourceImage);
    }
    if (!source) throw new Error(`dockerd has no image ${inputs.sourceImage}`);
    const changed = (await inspectImage(inputs.targetImage))?.id !== source.id;
    if (changed) await docker(["tag", inputs.sourceImage, inputs.targetImage]);
    return { state: { ...raw, sourceImageId: source.id }, changed };
  },
};

/** `docker:index/registryImage:RegistryImage`: `docker push`, logged in through a throwaway config when asked. */
const pushPerformer: ResourcePerformer = {
  kind: "docker push",
  describe: (inputs) => repositoryOf(String(inputs.name)),
  async perform(raw) {
    const inputs = raw as unknown as RegistryImageInputs;
    const configDir = fs.mkdtempSync(path.join(os.tmpdir(), "antidote-docker-config-"));
    const before = await repoDigest(inputs.name, repositoryOf(inputs.name));
    let output: string;
    try {
      const auth = reveal<RegistryImageInputs["authConfig"]>(inputs.authConfig);
      if (auth) await dockerLogin(configDir, auth.address, auth.username, reveal<string>(auth.password));
      // A large disk layer over a slow link takes long; the registry skips layers it already has.
      output = await docker(["--config", configDir, "push", inputs.name], { timeoutMs: 90 * 60_000 });
    } finally {
      fs.rmSync(configDir, { recursive: true, force: true });
    }
    const digest = await repoDigest(inputs.name, repositoryOf(inputs.name));
    if (!digest) throw new Error(`pushed ${inputs.name} but dockerd recorded no digest for it`);
    // Nothing uploaded ("Layer already exists" for each) and the same manifest as before: the registry had it all.
    const changed = digest !== before || /: (Pushed|Mounted from .*)$/m.test(output);
    return { state: { ...raw, sha256Digest: digest }, changed };
  },
};

function dockerLogin(configDir: string, address: string, username: string, password: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // The password goes on stdin: never on a command line, in the environment of children or in a log.
    const child = spawn(
      "docker",
      ["--config", configDir, "login", "--username", username, "--password-stdin", address],
      { stdio: ["pipe", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`docker login ${address} as ${username}: ${stderr.trim()}`)),
    );
    child.stdin!.end(password);
  });
}

/** The resource types the local runner performs besides commands. */
export const resourcePerformers: Record<string, ResourcePerformer> = {
  "docker:index/tag:Tag": tagPerformer,
  "docker:index/registryImage:RegistryImage": pushPerformer,
};
