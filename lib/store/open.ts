import { BucketCache } from "./bucket-cache";
import { GcsStore } from "./gcs";
import { parseGsUrl } from "./gcs-bucket";
import { defaultStoreDir, LocalStore } from "./local";
import { ArtifactStore } from "./store";

/**
 * The store a step builds into: the local store (`$ANTIDOTE_STORE`, …), or — when `$ANTIDOTE_SHARED_STORE` names a
 * `gs://bucket/prefix` — the bucket shared between build hosts, with the local store as its cache. Its credentials
 * come from `env` (`GcsBucket`); its endpoint is Google's, or `$STORAGE_EMULATOR_HOST`, which the library reads.
 * `$ANTIDOTE_CACHE_STORE` (the stack's antidote-images:cacheStore) names a shared store the local store reads through
 * as a cache, never writing it ({@link BucketCache}).
 */
export function openStore(env: NodeJS.ProcessEnv = process.env): ArtifactStore {
  const cacheStore = env.ANTIDOTE_CACHE_STORE;
  // Its state lives in the local store, made (and checked) first.
  const readThrough = cacheStore
    ? [
        new BucketCache(parseGsUrl(cacheStore, "ANTIDOTE_CACHE_STORE"), {
          env,
          stateDir: () => cache.cacheDir("cache-store"),
        }),
      ]
    : [];
  let cache: LocalStore;
  try {
    cache = new LocalStore(defaultStoreDir(env), { readThrough });
  } catch (err) {
    // The program passes the stack's antidote-images:store to its step commands in this variable.
    const source = env.ANTIDOTE_STORE
      ? "$ANTIDOTE_STORE (the stack's antidote-images:store)"
      : "the default store";
    throw new Error(`${source}: ${(err as Error).message}`);
  }
  const shared = env.ANTIDOTE_SHARED_STORE;
  if (!shared) return cache;
  return new GcsStore(parseGsUrl(shared, "ANTIDOTE_SHARED_STORE"), cache, { env });
}
