import Ajv from "ajv";
import * as fs from "fs";
import * as path from "path";
import { Problem, schemaProblems } from "../schema-errors";
import {
  ACCOUNT_PATTERN,
  DEV_PATTERN,
  HOSTNAME_PATTERN,
  HOST_KEY_PATTERN,
  INTERFACE_PATTERN,
  LessonConfig,
  LessonFile,
  LessonInterface,
  LessonRoute,
  LessonSection,
  LessonService,
  MODE_PATTERN,
  UNIT_PATTERN,
  VAR_PATTERN,
  VLAN_PATTERN,
  lessonSchema,
} from "./schema";

/** The configuration file's name in the lesson directory. */
export const LESSON_FILE = "lesson.json";

const validateSchema = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(lessonSchema);

const PATTERN_WORDS: Record<string, string> = {
  [HOSTNAME_PATTERN]: 'a host name (letters, digits and "-", dot-separated)',
  [HOST_KEY_PATTERN]: 'a host name (letters, digits, ".", "_", "-")',
  [INTERFACE_PATTERN]: 'an interface name like "eth1" or an index like "1"',
  [VLAN_PATTERN]: "a VLAN id from 1 to 4094",
  [DEV_PATTERN]: 'an interface like "eth1", "1" or a VLAN like "eth1.100"',
  [VAR_PATTERN]: 'a variable name (letters, digits, "_"; not starting with a digit)',
  [ACCOUNT_PATTERN]: "a user or group name or a numeric id",
  [UNIT_PATTERN]: 'a systemd unit name like "frr" or "frr.service"',
  [MODE_PATTERN]: 'an octal mode as a string like "0640"',
  ["\\S"]: "a non-empty command",
};

/** An invalid lesson configuration: names the file and, per problem, the entry and what was expected. */
export class LessonError extends Error {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    const lines = problems.map((p) => `${p.entry}: ${p.message}`);
    super(`${file}: ${lines.length === 1 ? lines[0] : `\n  ${lines.join("\n  ")}`}`);
  }
}

export interface LessonCheckOptions {
  /** The lesson directory `files[].source` is relative to; without it, sources are not looked at. */
  lessonDir?: string;
  /** The VM's interface names (e.g. from the image metadata): interfaces and route devices must be among them. */
  interfaces?: string[];
  /** Check what this host applies (hosts.NAME over the top level); by default, what every host section applies. */
  host?: string;
}

/**
 * Every problem of a parsed configuration, by the same rules as `antidote-configure --check --static` inside the VM
 * (test/unit/lesson.test.ts holds both to the same fixtures): first the document alone, then, when that is sound,
 * what each host applies — source files, template variables, watched paths, interface names.
 */
export function checkLesson(doc: unknown, options: LessonCheckOptions = {}): Problem[] {
  const problems: Problem[] = validateSchema(doc)
    ? []
    : schemaProblems(validateSchema.errors ?? [], doc, lessonSchema, PATTERN_WORDS);
  if (!isObject(doc)) return problems;
  checkSection(problems, "", doc);
  for (const [name, section] of Object.entries(isObject(doc.hosts) ? doc.hosts : {})) {
    if (isObject(section)) checkSection(problems, `hosts.${name}`, section);
  }
  if (problems.length > 0) return unique(problems);

  const config = doc as LessonConfig;
  const hosts = Object.keys(config.hosts ?? {}).sort();
  if (options.host !== undefined && !hosts.includes(options.host)) {
    return [
      {
        entry: "--host",
        message: `no section hosts.${options.host} (it has: ${hosts.join(", ") || "none"})`,
      },
    ];
  }
  // With host sections, each VM is expected to have its own: the top level alone is then not checked.
  const targets = options.host !== undefined ? [options.host] : hosts.length > 0 ? hosts : [undefined];
  for (const host of targets) checkMerged(problems, mergeForHost(config, host), host, options);
  return unique(problems);
}

/** Reads and checks a configuration file; its directory is the lesson directory. Throws a LessonError. */
export function loadLesson(file: string, options: Omit<LessonCheckOptions, "lessonDir"> = {}): LessonConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const what = e.code ? `cannot read: ${e.message}` : `not valid JSON: ${e.message}`;
    throw new LessonError(file, [{ entry: "(file)", message: what }]);
  }
  const problems = checkLesson(doc, { ...options, lessonDir: path.dirname(file) });
  if (problems.length > 0) throw new LessonError(file, problems);
  return doc as LessonConfig;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function unique(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter(
    (p) => !seen.has(`${p.entry}\0${p.message}`) && !!seen.add(`${p.entry}\0${p.message}`),
  );
}

const join = (entry: string, key: string) => (entry === "" ? key : `${entry}.${key}`);

/** "eth1" and "1" are the same interface. */
function interfaceName(key: string): string {
  const m = new RegExp(INTERFACE_PATTERN).exec(key);
  return m ? `eth${m[1]}` : key;
}

function devName(dev: string): string {
  const m = /^(?:eth)?([0-9]+)(\..*)?$/.exec(dev);
  return m ? `eth${m[1]}${m[2] ?? ""}` : dev;
}

function unitName(name: string): string {
  return /\.[a-z]+$/.test(name) ? name : `${name}.service`;
}

// Addresses as bytes, so that IPv6 spellings compare and host bits can be checked. Stricter than `net.isIP`: no
// leading zeros in IPv4 (octal to some tools), no zone ids or embedded IPv4 — the same as antidote-configure.
export function parseIp(s: string): { family: 4 | 6; bytes: number[] } | undefined {
  const v4 = /^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$/.exec(s);
  if (v4) {
    const parts = v4.slice(1);
    if (parts.some((b) => Number(b) > 255 || /^0[0-9]/.test(b))) return undefined;
    return { family: 4, bytes: parts.map(Number) };
  }
  if (!/^[0-9A-Fa-f:]+$/.test(s)) return undefined;
  const gaps = s.split("::").length - 1;
  if (gaps > 1) return undefined;
  let groups: string[];
  if (gaps === 1) {
    const [head, tail] = s.split("::");
    const h = head === "" ? [] : head.split(":");
    const t = tail === "" ? [] : tail.split(":");
    if (h.length + t.length > 7) return undefined;
    groups = [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  } else {
    groups = s.split(":");
    if (groups.length !== 8) return undefined;
  }
  if (groups.some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g))) return undefined;
  return { family: 6, bytes: groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 255]) };
}

export function parseCidr(s: string): { family: 4 | 6; bytes: number[]; length: number } | undefined {
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(s);
  const ip = m ? parseIp(m[1]) : undefined;
  if (!m || !ip || Number(m[2]) > (ip.family === 4 ? 32 : 128)) return undefined;
  return { ...ip, length: Number(m[2]) };
}

/** The canonical text (RFC 5952 for IPv6), as `ip` prints it. */
export function formatIp(family: 4 | 6, bytes: number[]): string {
  if (family === 4) return bytes.join(".");
  const g = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => bytes[2 * i] * 256 + bytes[2 * i + 1]);
  let [best, bestLength] = [-1, 1];
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j;
  }
  const hex = g.map((n) => n.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`;
}

function hostBitsZero(bytes: number[], length: number): boolean {
  return bytes.every((b, i) => {
    const keep = length - 8 * i;
    return keep >= 8 || (b & (keep <= 0 ? 0xff : 0xff >> keep)) === 0;
  });
}

function checkAddresses(problems: Problem[], entry: string, list: unknown): void {
  if (!Array.isArray(list)) return;
  const seen = new Map<string, number>();
  list.forEach((a, i) => {
    if (typeof a !== "string") return;
    const cidr = parseCidr(a);
    if (!cidr) {
      problems.push({
        entry: `${entry}[${i}]`,
        message: `expected an IPv4/IPv6 address with prefix length, got ${JSON.stringify(a)}`,
      });
      return;
    }
    const canonical = `${formatIp(cidr.family, cidr.bytes)}/${cidr.length}`;
    const first = seen.get(canonical);
    if (first !== undefined)
      problems.push({ entry: `${entry}[${i}]`, message: `${canonical} is also ${entry}[${first}]` });
    else seen.set(canonical, i);
  });
}

/** What the schema cannot say about one section: address syntax, networks, duplicates, paths. */
function checkSection(problems: Problem[], entry: string, s: Record<string, unknown>): void {
  const at = (key: string) => join(entry, key);
  const add = (e: string, message: string) => problems.push({ entry: e, message });

  if (isObject(s.interfaces)) {
    const names = new Map<string, string>();
    for (const key of Object.keys(s.interfaces).sort()) {
      if (!new RegExp(INTERFACE_PATTERN).test(key)) continue;
      const e = at(`interfaces.${key}`);
      const name = interfaceName(key);
      const first = names.get(name);
      if (first !== undefined) add(e, `same interface as ${at(`interfaces.${first}`)}`);
      else names.set(name, key);
      const iface = s.interfaces[key];
      if (!isObject(iface)) continue;
      checkAddresses(problems, `${e}.addresses`, iface.addresses);
      if (name === "eth0" && iface.state === "down") {
        add(`${e}.state`, '"down" would cut the management network (eth0)');
      }
      for (const [id, vlan] of Object.entries(isObject(iface.vlans) ? iface.vlans : {})) {
        if (isObject(vlan)) checkAddresses(problems, `${e}.vlans.${id}.addresses`, vlan.addresses);
      }
    }
  }
  if (Array.isArray(s.routes)) {
    s.routes.forEach((r: unknown, i) => {
      if (!isObject(r)) return;
      const e = at(`routes[${i}]`);
      let toFamily: number | undefined;
      if (typeof r.to === "string" && r.to !== "default") {
        const cidr = parseCidr(r.to);
        if (!cidr)
          add(`${e}.to`, `expected "default" or a network with prefix length, got ${JSON.stringify(r.to)}`);
        else if (!hostBitsZero(cidr.bytes, cidr.length)) {
          add(`${e}.to`, `expected a network (host bits zero), got ${JSON.stringify(r.to)}`);
        } else toFamily = cidr.family;
      }
      let viaFamily: number | undefined;
      if (typeof r.via === "string") {
        viaFamily = parseIp(r.via)?.family;
        if (viaFamily === undefined) {
          add(
            `${e}.via`,
            `expected an IPv4/IPv6 address without prefix length, got ${JSON.stringify(r.via)}`,
          );
        }
      }
      if (toFamily && viaFamily && toFamily !== viaFamily) {
        add(`${e}.via`, `expected an IPv${toFamily} gateway for an IPv${toFamily} route`);
      }
      if (!("via" in r) && !("dev" in r)) add(e, 'expected "via" or "dev" (or both)');
    });
  }
  if (Array.isArray(s.files)) {
    const paths = new Map<string, number>();
    s.files.forEach((f: unknown, i) => {
      if (!isObject(f)) return;
      const e = at(`files[${i}]`);
      if (
        typeof f.source === "string" &&
        (f.source === "" || f.source.startsWith("/") || f.source.split("/").includes(".."))
      ) {
        add(
          `${e}.source`,
          `expected a path relative to the lesson directory (no leading "/", no ".."), got ${JSON.stringify(f.source)}`,
        );
      }
      if (typeof f.path !== "string") return;
      if (!/^\/.*[^/]$/.test(f.path) || f.path.split("/").some((p) => p === "." || p === "..")) {
        add(`${e}.path`, `expected an absolute file path (no "." or ".."), got ${JSON.stringify(f.path)}`);
      } else if (paths.has(f.path)) {
        add(`${e}.path`, `"${f.path}" is also the path of ${at(`files[${paths.get(f.path)}]`)}`);
      } else paths.set(f.path, i);
    });
  }
  if (Array.isArray(s.services)) {
    const units = new Map<string, number>();
    s.services.forEach((sv: unknown, i) => {
      const name =
        typeof sv === "string" ? sv : isObject(sv) && typeof sv.name === "string" ? sv.name : undefined;
      if (name === undefined || !new RegExp(UNIT_PATTERN).test(name)) return;
      const unit = unitName(name);
      const first = units.get(unit);
      if (first !== undefined) add(at(`services[${i}]`), `"${unit}" is also ${at(`services[${first}]`)}`);
      else units.set(unit, i);
    });
  }
}

/** What one host applies, each item with the entry it came from, so that messages name what the author wrote. */
interface Merged {
  vars: Record<string, string | number | boolean>;
  interfaces: Map<string, { entry: string; config: LessonInterface }>;
  routes: (LessonRoute & { entry: string })[];
  files: (LessonFile & { entry: string })[];
  services: (LessonService & { entry: string; unit: string })[];
}

/** The top level with a host's section over it: vars and interface fields override, files and services replace. */
export function mergeForHost(config: LessonConfig, host?: string): Merged {
  const m: Merged = { vars: {}, interfaces: new Map(), routes: [], files: [], services: [] };
  const sections: [string, LessonSection][] = [["", config]];
  if (host !== undefined && config.hosts?.[host]) sections.push([`hosts.${host}`, config.hosts[host]]);
  for (const [prefix, s] of sections) {
    Object.assign(m.vars, s.vars);
    for (const [key, iface] of Object.entries(s.interfaces ?? {})) {
      const name = interfaceName(key);
      m.interfaces.set(name, {
        entry: join(prefix, `interfaces.${key}`),
        config: { ...m.interfaces.get(name)?.config, ...iface },
      });
    }
    (s.routes ?? []).forEach((r, i) => m.routes.push({ ...r, entry: join(prefix, `routes[${i}]`) }));
    (s.files ?? []).forEach((f, i) => {
      m.files = m.files.filter((g) => g.path !== f.path);
      m.files.push({ ...f, entry: join(prefix, `files[${i}]`) });
    });
    (s.services ?? []).forEach((sv, i) => {
      const service = typeof sv === "string" ? { name: sv } : sv;
      const unit = unitName(service.name);
      m.services = m.services.filter((t) => t.unit !== unit);
      m.services.push({ ...service, unit, entry: join(prefix, `services[${i}]`) });
    });
  }
  return m;
}

const TEMPLATE = /\{\{\s*([^{}\s]*)\s*\}\}/g;

function checkMerged(
  problems: Problem[],
  m: Merged,
  host: string | undefined,
  options: LessonCheckOptions,
): void {
  const add = (entry: string, message: string) => problems.push({ entry, message });
  const forHost = host !== undefined ? ` (for host ${host})` : "";
  if (options.lessonDir !== undefined) {
    for (const f of m.files) {
      const source = path.join(options.lessonDir, f.source);
      let text: string;
      try {
        if (!fs.statSync(source).isFile()) throw new Error("not a file");
        text = fs.readFileSync(source, "utf8");
      } catch {
        add(`${f.entry}.source`, `no such file in the lesson directory: ${f.source}`);
        continue;
      }
      if (!f.template) continue;
      const missing = new Map<string, string>();
      for (const [, name] of text.matchAll(TEMPLATE)) {
        if (!new RegExp(VAR_PATTERN).test(name)) missing.set(name, `{{${name}}} is not a variable name`);
        else if (!(name in m.vars))
          missing.set(name, `uses {{${name}}}, which vars does not define${forHost}`);
      }
      for (const name of [...missing.keys()].sort())
        add(f.entry, `template ${f.source} ${missing.get(name)}`);
    }
  }
  const paths = new Set(m.files.map((f) => f.path));
  for (const sv of m.services) {
    (sv.watch ?? []).forEach((w, i) => {
      if (!paths.has(w))
        add(`${sv.entry}.watch[${i}]`, `"${w}" is not the path of any files entry${forHost}`);
    });
  }
  if (options.interfaces === undefined) return;
  const known = new Set(options.interfaces);
  const have = options.interfaces.join(", ");
  const vlans = new Set<string>();
  for (const [name, { entry, config }] of [...m.interfaces].sort(([a], [b]) => a.localeCompare(b))) {
    if (!known.has(name)) add(entry, `no such interface (this VM has ${have})${forHost}`);
    for (const id of Object.keys(config.vlans ?? {})) vlans.add(`${name}.${id}`);
  }
  for (const r of m.routes) {
    if (r.dev === undefined) continue;
    const dev = devName(r.dev);
    if (!known.has(dev) && !vlans.has(dev))
      add(`${r.entry}.dev`, `no such interface: ${dev} (this VM has ${have})${forHost}`);
  }
}
