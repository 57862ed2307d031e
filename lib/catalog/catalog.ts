import * as fs from "fs";
import * as path from "path";
import { loadMetadata, METADATA_FILE, MetadataError } from "../metadata/metadata";
import { ImageMetadata } from "../metadata/schema";
import { ArtifactStore, StepRef } from "../store/store";

/** The last build of one step, as the store recorded it. */
export interface BuiltStepInfo {
  name: string;
  kind: string;
  key: string;
  at: string;
}

export interface CatalogImage extends ImageMetadata {
  /** The image folder, relative to the repository. */
  folder: string;
  /** Images that build on this one. */
  derived: string[];
  /** The kernel the image boots, when a build of it is recorded. */
  kernel?: string;
  /** Its steps' latest builds, when a store is given and has them. */
  builds: BuiltStepInfo[];
  /** Where it was published (registry references with digest, bucket objects), when known. */
  published: string[];
}

export interface CatalogKernel {
  name: string;
  key: string;
  /** `uname -r` of the kernel, when its artifact is in the store. */
  release?: string;
  usedBy: string[];
}

export interface Catalog {
  repository: string;
  images: CatalogImage[];
  kernels: CatalogKernel[];
  /** Image folders whose metadata is invalid: the image is left out, the problem is named. */
  problems: string[];
}

const SKIP = new Set(["node_modules", ".git"]);

/** Image folders of a repository: `images/*` when it has one, else any folder with a metadata file (4 levels deep). */
export function findImageFolders(repository: string): string[] {
  const conventional = path.join(repository, "images");
  if (fs.existsSync(conventional)) {
    return fs
      .readdirSync(conventional, { withFileTypes: true })
      .filter((e) => e.isDirectory() && fs.existsSync(path.join(conventional, e.name, METADATA_FILE)))
      .map((e) => path.join(conventional, e.name))
      .sort();
  }
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (fs.existsSync(path.join(dir, METADATA_FILE))) found.push(dir);
    if (depth === 0) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory() && !SKIP.has(e.name) && !e.name.startsWith("."))
        walk(path.join(dir, e.name), depth - 1);
    }
  };
  walk(repository, 4);
  return found.sort();
}

/**
 * Lists every image of a curriculum repository from its metadata, with the base → derived graph; with a store,
 * adds each image's latest builds, its kernel and where it was published.
 */
export async function buildCatalog(repository: string, store?: ArtifactStore): Promise<Catalog> {
  const problems: string[] = [];
  const images: CatalogImage[] = [];
  for (const folder of findImageFolders(repository)) {
    try {
      const metadata = loadMetadata(folder);
      images.push({
        ...metadata,
        folder: path.relative(repository, folder),
        derived: [],
        builds: [],
        published: [],
      });
    } catch (err) {
      if (!(err instanceof MetadataError)) throw err;
      problems.push(err.message);
    }
  }
  const byName = new Map(images.map((i) => [i.name, i]));
  for (const image of images) {
    if (image.base === undefined) continue;
    const base = byName.get(image.base);
    if (base) base.derived.push(image.name);
    else
      problems.push(
        `${image.folder}/${METADATA_FILE}: base: no image named '${image.base}' in this repository`,
      );
  }
  for (const image of images) {
    for (
      let seen = new Set<string>(), at: CatalogImage | undefined = image;
      at?.base;
      at = byName.get(at.base)
    ) {
      if (seen.has(at.name)) {
        problems.push(
          `${image.folder}/${METADATA_FILE}: base: images build on each other in a cycle (${[...seen].join(" → ")})`,
        );
        break;
      }
      seen.add(at.name);
    }
  }
  const kernels = store ? await addBuilds(images, store) : [];
  return { repository, images, kernels, problems };
}

async function addBuilds(images: CatalogImage[], store: ArtifactStore): Promise<CatalogKernel[]> {
  const refs = await store.listRefs();
  const kernels = new Map<string, CatalogKernel>();
  const kernelRefs = new Map(refs.filter((r) => r.inputs.kind === "kernel").map((r) => [r.key, r]));
  for (const image of images) {
    const own = refs.filter((r) => r.image === image.name);
    image.builds = own.map((r: StepRef) => ({ name: r.name, kind: r.inputs.kind, key: r.key, at: r.at }));
    for (const ref of own) {
      const kernelKey = ref.inputs.parents.kernel;
      const kernelRef = kernelKey === undefined ? undefined : kernelRefs.get(kernelKey);
      if (kernelKey !== undefined && kernelRef) {
        image.kernel = kernelRef.name;
        const entry = kernels.get(kernelRef.name) ?? {
          name: kernelRef.name,
          key: kernelKey,
          release: await releaseOf(store, kernelKey),
          usedBy: [],
        };
        if (!entry.usedBy.includes(image.name)) entry.usedBy.push(image.name);
        kernels.set(kernelRef.name, entry);
      }
      const artifact = await store.get(ref.key);
      const published = artifact?.meta.outputs.published;
      if (Array.isArray(published)) image.published.push(...published.map(String));
    }
  }
  return [...kernels.values()].sort((a, b) => a.name.localeCompare(b.name));
}

async function releaseOf(store: ArtifactStore, key: string): Promise<string | undefined> {
  const release = (await store.get(key))?.meta.outputs.release;
  return typeof release === "string" ? release : undefined;
}

/** The catalog as Markdown: a table of images, then a section per image. */
export function renderMarkdown(catalog: Catalog): string {
  const lines = [
    `# Images in ${path.basename(catalog.repository)}`,
    "",
    "| image | description | base | capabilities | ports | NICs |",
    "|---|---|---|---|---|---|",
    ...catalog.images.map(
      (i) =>
        `| [${i.name}](#${i.name}) | ${oneLine(i.description)} | ${i.base ?? "—"} | ${i.capabilities.join(", ") || "—"} | ` +
        `${i.ports.map((p) => `${p.port}/${p.protocol} ${p.name}`).join(", ") || "—"} | ${i.interfaces.length} |`,
    ),
  ];
  for (const i of catalog.images) {
    lines.push(
      "",
      `## ${i.name}`,
      "",
      i.description.trim(),
      "",
      `- folder: \`${i.folder}\``,
      `- login: \`${i.credentials.username}\` / \`${i.credentials.password}\``,
      `- resources: ${i.resources.memoryMiB} MiB, ${i.resources.cpus} CPU${i.resources.cpus > 1 ? "s" : ""}`,
      `- interfaces: ${i.interfaces.map((n) => `${n.name} (${n.purpose})`).join(", ")}`,
    );
    if (i.base) lines.push(`- builds on: ${i.base}`);
    if (i.derived.length > 0) lines.push(`- built on by: ${i.derived.join(", ")}`);
    if (i.kernel) lines.push(`- kernel: ${i.kernel}`);
    if (i.services.length > 0) lines.push(`- services: ${i.services.join(", ")}`);
    if (i.maintainer) lines.push(`- maintainer: ${i.maintainer}`);
    for (const b of i.builds)
      lines.push(`- last build of ${b.name} (${b.kind}): \`${b.key.slice(0, 12)}\` at ${b.at}`);
    for (const p of i.published) lines.push(`- published: \`${p}\``);
  }
  if (catalog.problems.length > 0)
    lines.push("", "## Problems", "", ...catalog.problems.map((p) => `- ${oneLine(p)}`));
  return lines.join("\n") + "\n";
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").replace(/\|/g, "\\|").trim();
}
