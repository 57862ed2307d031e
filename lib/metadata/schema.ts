import { LAB_LOGIN } from "../lab-login";

/** An image's description: what it is, what it offers and how to reach it (`images/<name>/metadata.yaml`). */
export interface ImageMetadata {
  /** The image's name; equals its folder's name. */
  name: string;
  /** One or two sentences: what the image is for. */
  description: string;
  /** Who looks after the image. @default none */
  maintainer?: string;
  /** The image this one builds on. @default none (a base image) */
  base?: string;
  /** What a lesson can do with it, e.g. `ssh`, `netconf`, `rest`, `vtysh`. @default ["ssh"] */
  capabilities: string[];
  /** The login a learner uses. @default antidote / antidotepassword */
  credentials: { username: string; password: string };
  /**
   * Ports the container forwards to the VM, besides 22/tcp (ssh), which every image forwards: the health check logs
   * in over it. Once loaded, the list starts with 22/tcp unless it declares 22/tcp itself.
   * @default [] (22/tcp only)
   */
  ports: { port: number; protocol: "tcp" | "udp"; name: string; description?: string }[];
  /** The VM's NICs in order; the first is the management NIC (DHCP, forwarded ports). @default [eth0 management] */
  interfaces: { name: string; purpose: "management" | "data"; description?: string }[];
  /** What the VM needs. @default { memoryMiB: 512, cpus: 1 } */
  resources: { memoryMiB: number; cpus: number };
  /** systemd units that must be active once the VM is up (checked by the boot test). @default [] */
  services: string[];
  /**
   * What booting takes: the budget from power-on to SSH answering (the boot test's deadline), and whether the image
   * needs KVM (a vendor system too slow or unwilling under emulation; its boot test then refuses TCG). Left out, the
   * boot test's defaults apply (120 s; KVM when it works here, else TCG).
   * @default none; within it, { timeoutSeconds: 120, requiresKvm: false }
   */
  boot?: { timeoutSeconds: number; requiresKvm: boolean };
}

const name = { type: "string", pattern: "^[a-z0-9][a-z0-9-]{0,62}$" };

/** JSON Schema (draft-07) of `metadata.yaml`; defaults are filled in by the validator. */
export const imageMetadataSchema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: "https://antidote.dev/schemas/image-metadata.json",
  title: "antidote image metadata",
  type: "object",
  additionalProperties: false,
  required: ["name", "description"],
  properties: {
    name,
    description: { type: "string", minLength: 1 },
    maintainer: { type: "string", minLength: 1 },
    base: name,
    capabilities: {
      type: "array",
      items: { type: "string", pattern: "^[a-z0-9][a-z0-9-]*$" },
      uniqueItems: true,
      default: ["ssh"],
    },
    credentials: {
      type: "object",
      additionalProperties: false,
      required: ["username", "password"],
      properties: {
        username: { type: "string", pattern: "^[a-z_][a-z0-9_-]{0,31}$" },
        password: { type: "string", minLength: 1 },
      },
      default: { ...LAB_LOGIN },
    },
    ports: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["port", "name"],
        properties: {
          port: { type: "integer", minimum: 1, maximum: 65535 },
          protocol: { enum: ["tcp", "udp"], default: "tcp" },
          name: { type: "string", pattern: "^[a-z0-9][a-z0-9-]*$" },
          description: { type: "string" },
        },
      },
      default: [],
    },
    interfaces: {
      type: "array",
      minItems: 1,
      maxItems: 16,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name", "purpose"],
        properties: {
          name: { type: "string", pattern: "^[a-z][a-z0-9]{0,14}$" },
          purpose: { enum: ["management", "data"] },
          description: { type: "string" },
        },
      },
      default: [{ name: "eth0", purpose: "management" }],
    },
    resources: {
      type: "object",
      additionalProperties: false,
      properties: {
        memoryMiB: { type: "integer", minimum: 128, maximum: 65536, default: 512 },
        cpus: { type: "integer", minimum: 1, maximum: 32, default: 1 },
      },
      default: { memoryMiB: 512, cpus: 1 },
    },
    services: {
      type: "array",
      items: { type: "string", pattern: "^[A-Za-z0-9@._-]+$" },
      uniqueItems: true,
      default: [],
    },
    boot: {
      type: "object",
      additionalProperties: false,
      properties: {
        timeoutSeconds: { type: "integer", minimum: 10, maximum: 3600, default: 120 },
        requiresKvm: { type: "boolean", default: false },
      },
    },
  },
} as const;
