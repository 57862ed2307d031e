import { capture } from "../exec";
import { docker, inspectImage, registryHost, repoDigest, repositoryOf } from "../steps/docker";
import { bucketObjectPerformer } from "./bucket-resources";
import { credentialsDir } from "./credentials-dir";
import { PROVIDER_TIMEOUT_MS, ResourcePerformer } from "./performer";

/** The private docker config directories of pushes (a login's credentials): `<tmp>/antidote-docker-config~…`. */
export const DOCKER_CONFIG_KIND = "antidote-docker-config";

interface TagInputs {
  sourceImage: string;
  targetImage: string;
}

interface RegistryImageInputs {
  name: string;
  authConfig?: { address: string; username: string; password: string };
  /** The program's `{ key }`: the step's content key, which names the key tag. */
  triggers?: { key?: string };
}

/** `docker:index/tag:Tag`: `docker tag`. */
const tagPerformer: ResourcePerformer = {
  kind: "docker tag",
  computed: ["sourceImageId"],
  describe: (inputs) => repositoryOf(String(inputs.targetImage)),
  async perform(raw, { timeoutMs = PROVIDER_TIMEOUT_MS } = {}) {
    const inputs = raw as unknown as TagInputs;
    // The container step put the image back into dockerd when the store answered it (as under the Pulumi engine).
    const source = await inspectImage(inputs.sourceImage);
    if (!source) throw new Error(`dockerd has no image ${inputs.sourceImage}`);
    const changed = (await inspectImage(inputs.targetImage))?.id !== source.id;
    if (changed) await docker(["tag", inputs.sourceImage, inputs.targetImage], { timeoutMs });
    return { outputs: { sourceImageId: source.id }, changed };
  },
};

/** `docker:index/registryImage:RegistryImage`: `docker push`, logged in through a throwaway config when asked. */
const pushPerformer: ResourcePerformer = {
  kind: "docker push",
  computed: ["sha256Digest"],
  describe: (inputs) => repositoryOf(String(inputs.name)),
  async perform(raw, { timeoutMs = PROVIDER_TIMEOUT_MS, provider } = {}) {
    const inputs = raw as unknown as RegistryImageInputs;
    const { address, login } = registryAccess(inputs, provider);
    // The login's credentials go with the directory, even when this process is killed.
    const { dir: configDir, remove: removeConfig } = credentialsDir(DOCKER_CONFIG_KIND);
    let before: { digest?: string } | undefined;
    try {
      if (login) await dockerLogin(configDir, registryHost(inputs.name), login.username, login.password);
      // What the registry's tag names now: dockerd's own record (RepoDigests, one per repository, not per tag)
      // cannot tell, as a push of the same image under another tag of the repository records it too.
      before = await registryManifest(configDir, inputs.name, address);
      // A key tag never moves: it names one build of that key for good. An image built again (dockerd lost it) has
      // the same layers but a config of its own, and pushing it would re-point the tag; the registry's stays.
      if (before && isKeyTag(inputs)) {
        if (!before.digest) {
          throw new Error(
            `${inputs.name} in the registry is a manifest list, not the image its key names; a key tag never moves`,
          );
        }
        return { outputs: { sha256Digest: before.digest }, changed: false };
      }
      // The registry skips layers it already has; a large disk layer over a slow link takes long (PUBLISH_TIMEOUTS).
      await docker(["--config", configDir, "push", inputs.name], { timeoutMs });
    } finally {
      removeConfig();
    }
    const digest = await repoDigest(inputs.name, repositoryOf(inputs.name));
    if (!digest) throw new Error(`pushed ${inputs.name} but dockerd recorded no digest for it`);
    return { outputs: { sha256Digest: digest }, changed: digest !== before?.digest };
  },
};

/** Whether `name` is the key tag: its tag is the content key the program gives as the push's trigger. */
function isKeyTag(inputs: RegistryImageInputs): boolean {
  const tag = inputs.name.slice(repositoryOf(inputs.name).length + 1);
  return tag !== "" && tag === inputs.triggers?.key;
}

/**
 * The manifest the registry serves for `name` (its digest; none for a manifest list), or undefined when it has no
 * such tag: `docker manifest inspect`, over plain HTTP when the provider's address says so (as the provider reads
 * digests).
 */
async function registryManifest(
  configDir: string,
  name: string,
  address: string,
): Promise<{ digest?: string } | undefined> {
  const insecure = address.startsWith("http://") ? ["--insecure"] : [];
  let inspected: string;
  try {
    inspected = await docker(["--config", configDir, "manifest", "inspect", ...insecure, "--verbose", name]);
  } catch (err) {
    if (/no such manifest/i.test((err as Error).message)) return undefined;
    throw err;
  }
  const manifest = JSON.parse(inspected) as { Descriptor?: { digest?: string } } | unknown[];
  return { digest: Array.isArray(manifest) ? undefined : manifest.Descriptor?.digest };
}

/**
 * The registry address and login a push uses, by the docker provider's rules: the resource's `authConfig`, else the
 * provider's `registryAuth` entry for the image's registry (no login when it disables auth); with neither, the
 * provider refuses the push, and so does the runner.
 */
function registryAccess(
  inputs: RegistryImageInputs,
  provider: Record<string, unknown> | undefined,
): { address: string; login?: { username: string; password: string } } {
  if (inputs.authConfig) return { address: inputs.authConfig.address, login: inputs.authConfig };
  const host = registryHost(inputs.name);
  const raw = provider?.registryAuth;
  // The engine hands a provider's structured config over as JSON text.
  const entries = (typeof raw === "string" ? JSON.parse(raw) : (raw ?? [])) as RegistryAuthEntry[];
  const entry = entries.find((e) => e.address.replace(/^https?:\/\//, "").split("/")[0] === host);
  if (!entry) {
    throw new Error(
      `no auth config found for registry ${host}: the docker provider pushes only with the resource's authConfig ` +
        `or a registryAuth entry of its provider for that registry`,
    );
  }
  if (entry.authDisabled) return { address: entry.address };
  if (!entry.username || !entry.password)
    throw new Error(`registryAuth for ${host} has no username and password`);
  return { address: entry.address, login: { username: entry.username, password: entry.password } };
}

interface RegistryAuthEntry {
  address: string;
  username?: string;
  password?: string;
  authDisabled?: boolean;
}

async function dockerLogin(
  configDir: string,
  address: string,
  username: string,
  password: string,
): Promise<void> {
  // The password goes on stdin: never on a command line, in the environment of children or in a log.
  const run = await capture(
    "docker",
    ["--config", configDir, "login", "--username", username, "--password-stdin", address],
    { input: password },
  );
  if (run.status !== 0) throw new Error(`docker login ${address} as ${username}: ${run.stderr.trim()}`);
}

/** The resource types the local runner performs besides commands. */
export const resourcePerformers: Record<string, ResourcePerformer> = {
  "docker:index/tag:Tag": tagPerformer,
  "docker:index/registryImage:RegistryImage": pushPerformer,
  "gcp:storage/bucketObject:BucketObject": bucketObjectPerformer,
};
