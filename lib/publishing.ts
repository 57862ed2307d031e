import * as docker from "@pulumi/docker";
// The storage module only: the whole of @pulumi/gcp is ~2,000 declaration files for the type check of image.ts.
import * as storage from "@pulumi/gcp/storage";
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_NAMESPACE, secretHint } from "./config-keys";
import { registryHost } from "./steps/docker";

/** Where a stack publishes, from its config (`antidote-images:<key>`); every key has an embedded default. */
export interface PublishSettings {
  /**
   * Registry and namespace images are pushed to: `<registry>/<image>:<tag>`. `none` pushes nothing (the images stay
   * in dockerd). @default "127.0.0.1:5000" (the project's local registry, `scripts/start-registry.sh`)
   */
  registry?: string;
  /** Login for the registry, with `registryPassword`. @default none: push without logging in */
  registryUsername?: string;
  /** Secret (`pulumi config set --secret`); never in state, logs or images in plain. @default none */
  registryPassword?: pulumi.Output<string>;
  /** The tag that follows the newest build, besides the content key. @default "latest" */
  movingTag: string;
  /** GCS bucket for disks and kernel packages. @default none: disks stay in the artifact store */
  bucket?: string;
}

export const DEFAULT_REGISTRY = "127.0.0.1:5000";

/**
 * Time limits of pushes and uploads, sized for multi-GiB disks on a slow uplink: the docker provider's own default
 * for a push is 20 minutes. The local runner holds a publication to them as the engine does.
 */
export const PUBLISH_TIMEOUTS: pulumi.CustomTimeouts = { create: "90m", update: "90m", delete: "10m" };

export function publishSettings(): PublishSettings {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  const registry = config.get("registry") ?? DEFAULT_REGISTRY;
  const username = config.get("registryUsername");
  const password = config.getSecret("registryPassword");
  if (username !== undefined && password === undefined) {
    throw new Error(
      `${CONFIG_NAMESPACE}:registryPassword: expected the password or token of registry user '${username}' ` +
        `(${CONFIG_NAMESPACE}:registryUsername), got nothing; set it with ${secretHint("registryPassword", pulumi.getStack())}`,
    );
  }
  if (username === undefined && password !== undefined) {
    throw new Error(
      `${CONFIG_NAMESPACE}:registryUsername: expected the registry user the password belongs to, got nothing; ` +
        `set it with pulumi config set ${CONFIG_NAMESPACE}:registryUsername <user>, or unset the password`,
    );
  }
  const movingTag = config.get("movingTag") ?? "latest";
  checkMovingTag(movingTag);
  return {
    registry: registry === "none" ? undefined : checkRegistry(registry.replace(/\/+$/, "")),
    registryUsername: username,
    registryPassword: password,
    movingTag,
    bucket: config.get("bucket"),
  };
}

// Docker's reference grammar (github.com/distribution/reference): a tag, a repository's path component, a registry
// host (a dotted name or an IPv6 address in brackets, then an optional port).
const TAG = /^\w[\w.-]{0,127}$/;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const HOST_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
const HOST = `(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const REGISTRY = new RegExp(`^${HOST}(?:/${PATH_COMPONENT})*$`);
const REPOSITORY = new RegExp(`^${HOST}(?:/${PATH_COMPONENT})+$`);
/** Docker's limit on a repository name, registry included. */
const REPOSITORY_MAX = 255;
/** The form of a content key: the tag that never moves (the runner keeps such a tag where the registry has it). */
const KEY_TAG = /^[0-9a-f]{64}$/;

function checkMovingTag(tag: string): void {
  const expected = !TAG.test(tag)
    ? "a Docker tag (up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')"
    : KEY_TAG.test(tag)
      ? "a Docker tag that is not 64 hex digits (the form of the content-key tags, which never move)"
      : undefined;
  if (expected) {
    throw new Error(
      `${CONFIG_NAMESPACE}:movingTag: expected ${expected}, got '${tag}'; ` +
        `set it with pulumi config set ${CONFIG_NAMESPACE}:movingTag <tag>`,
    );
  }
}

function checkRegistry(registry: string): string {
  const host = registryHost(registry);
  // Docker reads a first component without a dot, a port or the name localhost as a Docker Hub namespace.
  const isHost = /[.:[]/.test(host) || host === "localhost";
  if (!isHost || !REGISTRY.test(registry)) {
    throw new Error(
      `${CONFIG_NAMESPACE}:registry: expected a registry host with an optional port and lower-case namespace ` +
        `(e.g. ${DEFAULT_REGISTRY}, docker.io/<org>), or none, got '${registry}'`,
    );
  }
  return registry;
}

/** `<registry>/<repository>` as Docker accepts it, or an error naming the image's repository. */
function checkRepository(target: string, repository: string): void {
  if (!REPOSITORY.test(target) || target.length > REPOSITORY_MAX) {
    throw new Error(
      `repository '${repository}': expected lower-case path components (letters, digits, '.', '_', '-', '/') ` +
        `making at most ${REPOSITORY_MAX} characters with the registry, got '${target}'`,
    );
  }
}

/**
 * The address the docker provider reads a pushed image's digest from (`HEAD <address>/v2/…/manifests/<tag>`): it
 * prefixes `https://` unless the address has a scheme, and keeps `docker.io` as the host of `docker.io/…` names,
 * which serves no registry API. So: Docker Hub's API host for Docker Hub, plain HTTP for a loopback registry
 * (dockerd pushes to those over HTTP too), HTTPS for the rest. docs/pipeline.md has the provider's rules.
 */
export function registryEndpoint(registry: string): string {
  const host = registryHost(registry);
  if (host === "docker.io" || host === "index.docker.io") return "registry-1.docker.io";
  if (/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(host)) return `http://${host}`;
  return host;
}

const anonymousRegistries = new Map<string, docker.Provider>();

/**
 * The docker provider for a registry pushed to without a login: the provider refuses a push that has neither the
 * resource's `authConfig` nor a `registryAuth` entry for its registry, so this one has an entry with auth disabled.
 */
function anonymousRegistryProvider(registry: string): docker.Provider {
  const address = registryEndpoint(registry);
  let provider = anonymousRegistries.get(address);
  if (!provider) {
    provider = new docker.Provider("docker-registry", { registryAuth: [{ address, authDisabled: true }] });
    anonymousRegistries.set(address, provider);
  }
  return provider;
}

export interface PushedImage {
  /** `<registry>/<repository>@sha256:…`: the pushed image, by digest. */
  reference: pulumi.Output<string>;
  /** Both pushes (key tag, moving tag). */
  pushes: docker.RegistryImage[];
}

/**
 * Pushes a local image under two tags, its content key and the moving tag: a `docker.Tag` then a
 * `docker.RegistryImage` for each (what `pulumi up` does with the docker provider, and what the local runner performs
 * with the docker CLI). Pushing after the first tag uploads only the layers the registry does not have.
 */
export function pushImage(
  parent: pulumi.Resource,
  name: string,
  args: {
    /** The local image, e.g. `antidote-images/frr:<key>` (an Output, so nothing is pushed when it was not built). */
    source: pulumi.Output<string>;
    repository: string;
    key: string;
    settings: PublishSettings & { registry: string };
    dependsOn: pulumi.Resource[];
  },
): PushedImage {
  const { settings } = args;
  const target = `${settings.registry}/${args.repository}`;
  // Both tags are checked before either registers: a push must not go out and its moving tag then be refused.
  checkRepository(target, args.repository);
  checkMovingTag(settings.movingTag);
  const authConfig =
    settings.registryUsername && settings.registryPassword
      ? {
          address: registryEndpoint(settings.registry),
          username: settings.registryUsername,
          password: settings.registryPassword,
        }
      : undefined;
  const provider = authConfig ? undefined : anonymousRegistryProvider(settings.registry);
  const pushes = [
    ["key", args.key],
    ["moving", settings.movingTag],
  ].map(([which, tag]) => {
    const tagged = new docker.Tag(
      `${name}-tag-${which}`,
      { sourceImage: args.source, targetImage: `${target}:${tag}`, tagTriggers: [args.key] },
      { parent, dependsOn: args.dependsOn, provider },
    );
    return new docker.RegistryImage(
      `${name}-push-${which}`,
      { name: tagged.targetImage, keepRemotely: true, triggers: { key: args.key }, authConfig },
      { parent, dependsOn: [tagged], customTimeouts: PUBLISH_TIMEOUTS, provider },
    );
  });
  const reference = pulumi.interpolate`${target}@${pushes[0].sha256Digest}`;
  return { reference, pushes };
}

/**
 * Uploads a file of a step's artifact to the stack's bucket under a content-addressed name. Objects are kept when
 * the resource goes (`retainOnDelete`): a lab that pinned an old disk must still find it.
 */
export function uploadToBucket(
  parent: pulumi.Resource,
  name: string,
  args: {
    bucket: string;
    objectName: string;
    /** Absolute path of the file, once its step has built (unknown when it did not). */
    file: pulumi.Output<string>;
    /** Recorded as the object's metadata, for checking a download. @default none */
    sha256?: pulumi.Output<string>;
    dependsOn: pulumi.Resource[];
  },
): storage.BucketObject {
  return new storage.BucketObject(
    name,
    {
      bucket: args.bucket,
      name: args.objectName,
      source: args.file.apply((file) => new pulumi.asset.FileAsset(file)),
      contentType: "application/octet-stream",
      // The name never points at other bytes, so caches may keep it for good.
      cacheControl: "public, max-age=31536000, immutable",
      metadata: args.sha256 ? { sha256: args.sha256 } : undefined,
    },
    { parent, dependsOn: args.dependsOn, retainOnDelete: true, customTimeouts: PUBLISH_TIMEOUTS },
  );
}
