// The SDK's own wire constants, from the module that defines them (the whole SDK takes a second longer to load).
import * as rpc from "@pulumi/pulumi/runtime/rpc";

/**
 * Property values as the engine side of the protocol sees them. The wire format (the SDK's signature keys, the
 * unknown sentinel) is the SDK's own, read from `pulumi.runtime`; here it becomes plain values plus two markers.
 */

/** A value the program does not know yet (an output of a resource that is not created, or that failed). */
export const UNKNOWN: unique symbol = Symbol("unknown");

/** A secret value: the program marked it so, and the engine must keep it out of anything shown or stored. */
export class Secret {
  constructor(readonly value: unknown) {}
  /** Never print the value by accident (logs, JSON reports). */
  toJSON(): string {
    return "[secret]";
  }
}

/** A file the program passed as an asset (a `pulumi.asset.FileAsset`). */
export class FileAssetValue {
  constructor(readonly path: string) {}
}

/** A resource passed as a value (a resource reference): its URN and id. */
export class ResourceReference {
  constructor(
    readonly urn: string,
    readonly id: string | undefined,
  ) {}
}

/** A value from the wire (`Struct.toJavaScript()`) as plain values, secrets, unknowns, assets and references. */
export function decode(value: unknown): unknown {
  if (value === rpc.unknownValue) return UNKNOWN;
  if (Array.isArray(value)) return value.map(decode);
  if (value === null || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  switch (record[rpc.specialSigKey]) {
    case rpc.specialSecretSig:
      return new Secret(decode(record.value));
    case rpc.specialAssetSig:
      if (typeof record.path === "string") return new FileAssetValue(record.path);
      throw new Error(`only file assets are supported, got ${JSON.stringify(Object.keys(record))}`);
    case rpc.specialResourceSig:
      return new ResourceReference(
        String(record.urn),
        record.id === undefined ? undefined : String(record.id),
      );
    case rpc.specialOutputValueSig: {
      const inner = "value" in record ? decode(record.value) : UNKNOWN;
      return record.secret === true ? new Secret(inner) : inner;
    }
    case undefined:
      return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, decode(v)]));
    default:
      throw new Error(`unsupported property value signature ${String(record[rpc.specialSigKey])}`);
  }
}

/** A plain value (with secrets and unknowns) in the wire format, for `Struct.fromJavaScript`. */
export function encode(value: unknown): unknown {
  if (value === UNKNOWN) return rpc.unknownValue;
  if (value instanceof Secret) {
    return { [rpc.specialSigKey]: rpc.specialSecretSig, value: encode(value.value) };
  }
  if (value instanceof FileAssetValue) {
    return { [rpc.specialSigKey]: rpc.specialAssetSig, path: value.path };
  }
  if (value instanceof ResourceReference) {
    return {
      [rpc.specialSigKey]: rpc.specialResourceSig,
      urn: value.urn,
      ...(value.id !== undefined ? { id: value.id } : {}),
    };
  }
  if (Array.isArray(value)) return value.map(encode);
  if (value === undefined) return null;
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, encode(v)]),
  );
}

/** True when the value is, or holds, something unknown. */
export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (value instanceof Secret) return containsUnknown(value.value);
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

/** True when the value is, or holds, a secret. */
export function containsSecret(value: unknown): boolean {
  if (value instanceof Secret) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsSecret);
  return false;
}

/** The value with every secret replaced by what it wraps: only for the code that performs a resource. */
export function reveal(value: unknown): unknown {
  if (value instanceof Secret) return reveal(value.value);
  if (Array.isArray(value)) return value.map(reveal);
  if (value === null || typeof value !== "object" || value instanceof FileAssetValue) return value;
  if (value instanceof ResourceReference) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
}
