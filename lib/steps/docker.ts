import { capture } from "../exec";

/** What the container steps record of an image in dockerd. */
export interface DockerImageInfo {
  /** Image ID (`sha256:…` of its config). */
  id: string;
  /** Uncompressed layer digests (diff IDs), base first: the same base layer has the same digest in every image. */
  layers: string[];
  /** Bytes of all layers, uncompressed. */
  size: number;
}

interface InspectOutput {
  Id: string;
  Size: number;
  RootFS?: { Layers?: string[] };
  RepoDigests?: string[];
}

/** Runs the docker CLI; rejects with its stderr. */
export async function docker(args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const run = await capture("docker", args, { timeoutMs });
  if (run.status === 0) return run.stdout;
  const status = run.timedOut
    ? `timed out after ${timeoutMs} ms`
    : `exited with status ${run.status ?? run.signal}`;
  throw new Error(`docker ${args[0]}: ${run.stderr.trim() || status}`);
}

async function inspect(ref: string): Promise<InspectOutput | undefined> {
  try {
    return (JSON.parse(await docker(["image", "inspect", ref])) as InspectOutput[])[0];
  } catch (err) {
    if (/No such image/i.test((err as Error).message)) return undefined;
    throw err;
  }
}

/** The image dockerd holds under `ref`, or undefined when it holds none. */
export async function inspectImage(ref: string): Promise<DockerImageInfo | undefined> {
  const image = await inspect(ref);
  return image && { id: image.Id, layers: image.RootFS?.Layers ?? [], size: image.Size };
}

/** The registry digest (`sha256:…`) dockerd recorded for `repository` when it last pushed or pulled it. */
export async function repoDigest(ref: string, repository: string): Promise<string | undefined> {
  const image = await inspect(ref);
  const entry = image?.RepoDigests?.find((d) => d.startsWith(`${repository}@`));
  return entry?.slice(repository.length + 1);
}

/** `registry/path/name:tag` → `registry/path/name` (a port in the registry host is not a tag). */
export function repositoryOf(ref: string): string {
  const withoutDigest = ref.split("@")[0];
  const slash = withoutDigest.lastIndexOf("/");
  const colon = withoutDigest.lastIndexOf(":");
  return colon > slash ? withoutDigest.slice(0, colon) : withoutDigest;
}

/** The registry host of `registry/namespace` or of an image name: what `docker login` takes. */
export function registryHost(registry: string): string {
  return registry.split("/")[0];
}
