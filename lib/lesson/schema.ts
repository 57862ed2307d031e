/**
 * A lesson configuration (`lesson.json` in the lesson directory), as `antidote-configure` applies it inside each VM.
 * The format is documented in docs/lessons.md; `lib/scripts/stage3/antidote-configure` is the other implementation
 * of these rules, and test/unit/lesson.test.ts holds both to the same fixtures.
 */

/** The interface fields a VLAN sub-interface has too. */
export interface LessonLink {
  /** IPv4/IPv6 addresses with prefix length ("10.0.12.1/24", "2001:db8::1/64"); added when missing, never removed. */
  addresses?: string[];
  /** 68..65535. @default unchanged */
  mtu?: number;
  /** @default "up" */
  state?: "up" | "down";
}

export interface LessonInterface extends LessonLink {
  /** 802.1Q sub-interfaces by VLAN id ("100" → eth1.100). */
  vlans?: Record<string, LessonLink>;
}

export interface LessonRoute {
  /** A network with prefix length, or "default". */
  to: string;
  /** Gateway address (same family as `to`). */
  via?: string;
  /** Interface: "eth1", "1" or a VLAN "eth1.100". */
  dev?: string;
  metric?: number;
}

export interface LessonFile {
  /** Path relative to the lesson directory (the configuration file's folder). */
  source: string;
  /** Absolute path in the VM; missing directories are created. */
  path: string;
  /** Octal, as a string. @default "0644" */
  mode?: string;
  /** User name or numeric id. @default "root" */
  owner?: string;
  /** @default "root" */
  group?: string;
  /** Replace `{{name}}` with `vars.name`. @default false */
  template?: boolean;
}

export interface LessonService {
  /** A systemd unit ("frr" means frr.service). */
  name: string;
  /** "changed": when anything (or anything in `watch`) changed; "always"; "never". @default "changed" */
  restart?: "changed" | "always" | "never";
  /** `systemctl enable` it too. @default false */
  enable?: boolean;
  /** Restart only when one of these files (paths of `files` entries) changed. @default any change */
  watch?: string[];
}

export interface LessonCommand {
  /** Run with /bin/sh -c, as root, after files and services. */
  run: string;
  /** @default "changed": only when the run changed something */
  when?: "changed" | "always";
}

/** What one VM applies: the top level, or a host's section over it. */
export interface LessonSection {
  hostname?: string;
  /** Template variables; a host's vars override the top level's. */
  vars?: Record<string, string | number | boolean>;
  /** By name ("eth1") or index ("1"), in the image metadata's order. */
  interfaces?: Record<string, LessonInterface>;
  routes?: LessonRoute[];
  files?: LessonFile[];
  /** A unit name, or the object form. */
  services?: (string | LessonService)[];
  /** A shell command, or the object form. */
  commands?: (string | LessonCommand)[];
}

export interface LessonConfig extends LessonSection {
  version?: 1;
  /** Per-VM sections by host name (the container's host name, or `--host`), applied over the top level. */
  hosts?: Record<string, LessonSection>;
}

export const HOSTNAME_PATTERN =
  "^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$";
export const HOST_KEY_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$";
export const INTERFACE_PATTERN = "^(?:eth)?(0|[1-9][0-9]?)$";
const VLAN_ID = "(?:[1-9][0-9]{0,2}|[1-3][0-9]{3}|40[0-8][0-9]|409[0-4])";
export const VLAN_PATTERN = `^${VLAN_ID}$`;
export const DEV_PATTERN = `^(?:eth)?(?:0|[1-9][0-9]?)(?:\\.${VLAN_ID})?$`;
export const VAR_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";
export const ACCOUNT_PATTERN = "^(?:[a-z_][a-z0-9_-]{0,31}\\$?|[0-9]+)$";
export const UNIT_PATTERN = "^[A-Za-z0-9@._:\\\\-]+$";
export const MODE_PATTERN = "^[0-7]{3,4}$";

const link = {
  addresses: { type: "array", items: { type: "string" } },
  mtu: { type: "integer", minimum: 68, maximum: 65535 },
  state: { enum: ["up", "down"] },
};

const section = {
  type: "object",
  additionalProperties: false,
  properties: {
    hostname: { type: "string", pattern: HOSTNAME_PATTERN },
    vars: {
      type: "object",
      propertyNames: { pattern: VAR_PATTERN },
      additionalProperties: { type: ["string", "number", "boolean"] },
    },
    interfaces: {
      type: "object",
      propertyNames: { pattern: INTERFACE_PATTERN },
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        properties: {
          ...link,
          vlans: {
            type: "object",
            propertyNames: { pattern: VLAN_PATTERN },
            additionalProperties: { type: "object", additionalProperties: false, properties: link },
          },
        },
      },
    },
    routes: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["to"],
        properties: {
          to: { type: "string" },
          via: { type: "string" },
          dev: { type: "string", pattern: DEV_PATTERN },
          metric: { type: "integer", minimum: 0, maximum: 4294967295 },
        },
      },
    },
    files: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["source", "path"],
        properties: {
          source: { type: "string" },
          path: { type: "string" },
          mode: { type: "string", pattern: MODE_PATTERN },
          owner: { type: "string", pattern: ACCOUNT_PATTERN },
          group: { type: "string", pattern: ACCOUNT_PATTERN },
          template: { type: "boolean" },
        },
      },
    },
    services: {
      type: "array",
      // A string is a unit name; `properties`, `required` and `additionalProperties` apply to the object form only.
      items: {
        type: ["string", "object"],
        pattern: UNIT_PATTERN,
        additionalProperties: false,
        required: ["name"],
        properties: {
          name: { type: "string", pattern: UNIT_PATTERN },
          restart: { enum: ["changed", "always", "never"] },
          enable: { type: "boolean" },
          watch: { type: "array", items: { type: "string" } },
        },
      },
    },
    commands: {
      type: "array",
      items: {
        type: ["string", "object"],
        pattern: "\\S",
        additionalProperties: false,
        required: ["run"],
        properties: { run: { type: "string", pattern: "\\S" }, when: { enum: ["changed", "always"] } },
      },
    },
  },
} as const;

/** JSON Schema (draft 7) of `lesson.json`. What it cannot say (address syntax, duplicates...) `checkLesson` adds. */
export const lessonSchema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: "https://antidote-images.dev/schemas/lesson.json",
  title: "antidote lesson configuration",
  ...section,
  properties: {
    ...section.properties,
    version: { const: 1 },
    hosts: { type: "object", propertyNames: { pattern: HOST_KEY_PATTERN }, additionalProperties: section },
  },
};
