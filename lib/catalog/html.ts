import * as path from "path";
import { Catalog, CatalogImage } from "./catalog";

const NODE_WIDTH = 168;
const NODE_HEIGHT = 44;
const GAP_X = 36;
const GAP_Y = 76;
const MARGIN = 24;

interface Node {
  id: string;
  label: string;
  sublabel: string;
  kind: "image" | "kernel";
  x: number;
  y: number;
}

interface Edge {
  from: string;
  to: string;
  kind: "base" | "kernel";
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Lays the graph out in rows: images without a base on top, each derived image a row below its base (ordered by
 * its parent's position to keep edges short), kernels in the bottom row.
 */
function layout(catalog: Catalog): { nodes: Node[]; edges: Edge[]; width: number; height: number } {
  const byName = new Map(catalog.images.map((i) => [i.name, i]));
  const depth = new Map<string, number>();
  const depthOf = (image: CatalogImage, seen = new Set<string>()): number => {
    const known = depth.get(image.name);
    if (known !== undefined) return known;
    const base = image.base ? byName.get(image.base) : undefined;
    const d = base && !seen.has(base.name) ? depthOf(base, seen.add(image.name)) + 1 : 0;
    depth.set(image.name, d);
    return d;
  };
  catalog.images.forEach((i) => depthOf(i));
  const rows: string[][] = [];
  for (const image of catalog.images) (rows[depth.get(image.name) ?? 0] ??= []).push(image.name);
  if (catalog.kernels.length > 0) rows.push(catalog.kernels.map((k) => `kernel:${k.name}`));

  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * GAP_X;
  const x = new Map<string, number>();
  const edges: Edge[] = [
    ...catalog.images
      .filter((i) => i.base && byName.has(i.base))
      .map((i) => ({ from: i.base as string, to: i.name, kind: "base" as const })),
    ...catalog.kernels.flatMap((k) =>
      k.usedBy.map((u) => ({ from: u, to: `kernel:${k.name}`, kind: "kernel" as const })),
    ),
  ];
  const nodes: Node[] = [];
  rows.forEach((row, r) => {
    const parentX = (id: string) => {
      const xs = edges.filter((e) => e.to === id).map((e) => x.get(e.from) ?? 0);
      return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
    };
    const ordered =
      r === 0 ? [...row].sort() : [...row].sort((a, b) => parentX(a) - parentX(b) || a.localeCompare(b));
    const rowWidth = ordered.length * NODE_WIDTH + (ordered.length - 1) * GAP_X;
    ordered.forEach((id, i) => {
      const nx = (width - rowWidth) / 2 + i * (NODE_WIDTH + GAP_X);
      x.set(id, nx);
      const kernel = catalog.kernels.find((k) => `kernel:${k.name}` === id);
      const image = byName.get(id);
      nodes.push({
        id,
        label: kernel ? kernel.name : id,
        sublabel: kernel ? (kernel.release ?? "kernel") : (image?.capabilities.join(", ") ?? ""),
        kind: kernel ? "kernel" : "image",
        x: nx,
        y: MARGIN + r * (NODE_HEIGHT + GAP_Y),
      });
    });
  });
  const height = MARGIN * 2 + rows.length * NODE_HEIGHT + Math.max(0, rows.length - 1) * GAP_Y;
  return { nodes, edges, width, height };
}

function graphSvg(catalog: Catalog): string {
  const { nodes, edges, width, height } = layout(catalog);
  const at = new Map(nodes.map((n) => [n.id, n]));
  const edgeSvg = edges.map((e) => {
    const from = at.get(e.from) as Node;
    const to = at.get(e.to) as Node;
    const [x1, y1, x2, y2] = [from.x + NODE_WIDTH / 2, from.y + NODE_HEIGHT, to.x + NODE_WIDTH / 2, to.y];
    const mid = (y1 + y2) / 2;
    return (
      `<path class="edge edge-${e.kind}" data-from="${escape(e.from)}" data-to="${escape(e.to)}" ` +
      `d="M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2 - 4}" marker-end="url(#arrow)"><title>${escape(
        e.kind === "base" ? `${e.to} builds on ${e.from}` : `${e.from} boots ${to.label}`,
      )}</title></path>`
    );
  });
  const nodeSvg = nodes.map(
    (n) =>
      `<g class="node node-${n.kind}" data-node="${escape(n.id)}" transform="translate(${n.x},${n.y})">` +
      `<a href="#${escape(n.kind === "image" ? `image-${n.id}` : "kernels")}"><rect width="${NODE_WIDTH}" height="${NODE_HEIGHT}" rx="8"/>` +
      `<text x="${NODE_WIDTH / 2}" y="19" class="label">${escape(n.label)}</text>` +
      `<text x="${NODE_WIDTH / 2}" y="35" class="sublabel">${escape(n.sublabel.slice(0, 26))}</text></a></g>`,
  );
  return (
    `<svg id="graph" role="img" aria-label="images and the images and kernels they build on" viewBox="0 0 ${width} ${height}" ` +
    `width="${width}" height="${height}"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" ` +
    `markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>` +
    `${edgeSvg.join("")}${nodeSvg.join("")}</svg>`
  );
}

function card(image: CatalogImage): string {
  const list = (items: string[]) => items.map((i) => `<li>${i}</li>`).join("");
  const link = (name: string) => `<a href="#image-${escape(name)}">${escape(name)}</a>`;
  const facts = [
    `<dt>login</dt><dd><code>${escape(image.credentials.username)}</code> / <code>${escape(image.credentials.password)}</code></dd>`,
    `<dt>resources</dt><dd>${image.resources.memoryMiB} MiB, ${image.resources.cpus} CPU</dd>`,
    `<dt>ports</dt><dd>${image.ports.map((p) => `${p.port}/${p.protocol} <small>${escape(p.name)}</small>`).join(", ") || "none"}</dd>`,
    `<dt>interfaces</dt><dd><ol>${list(image.interfaces.map((i) => `${escape(i.name)} <small>${i.purpose}${i.description ? ` — ${escape(i.description)}` : ""}</small>`))}</ol></dd>`,
    image.base ? `<dt>builds on</dt><dd>${link(image.base)}</dd>` : "",
    image.derived.length > 0 ? `<dt>built on by</dt><dd>${image.derived.map(link).join(", ")}</dd>` : "",
    image.kernel ? `<dt>kernel</dt><dd>${escape(image.kernel)}</dd>` : "",
    image.services.length > 0 ? `<dt>services</dt><dd>${image.services.map(escape).join(", ")}</dd>` : "",
    image.maintainer ? `<dt>maintainer</dt><dd>${escape(image.maintainer)}</dd>` : "",
    image.builds.length > 0
      ? `<dt>last builds</dt><dd><ul>${list(image.builds.map((b) => `${escape(b.name)} <code title="${b.key}">${b.key.slice(0, 12)}</code> <small>${escape(b.at)}</small>`))}</ul></dd>`
      : "",
    image.published.length > 0
      ? `<dt>published</dt><dd><ul>${list(image.published.map((p) => `<code>${escape(p)}</code>`))}</ul></dd>`
      : "",
  ];
  return (
    `<article class="card" id="image-${escape(image.name)}" data-image="${escape(image.name)}">` +
    `<h2>${escape(image.name)}</h2><p>${escape(image.description.trim())}</p>` +
    `<p class="badges">${image.capabilities.map((c) => `<span class="badge">${escape(c)}</span>`).join("")}</p>` +
    `<dl>${facts.join("")}</dl><p class="folder"><code>${escape(image.folder)}</code></p></article>`
  );
}

const STYLE = `
:root { --ink: #1d2733; --muted: #5b6b7c; --line: #d5dde6; --accent: #1f6feb; --kernel: #8250df; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; color: var(--ink); background: var(--bg); }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header h1 { margin: 28px 0 4px; font-size: 26px; }
header p { margin: 0 0 18px; color: var(--muted); }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin: 0 0 22px; }
section h2 { margin: 0 0 10px; font-size: 18px; }
#graph { display: block; margin: 0 auto; max-width: 100%; height: auto; }
#graph .node rect { fill: #eef4ff; stroke: var(--accent); stroke-width: 1.5; }
#graph .node-kernel rect { fill: #f4efff; stroke: var(--kernel); }
#graph .label { font-weight: bold; font-size: 14px; text-anchor: middle; fill: var(--ink); }
#graph .sublabel { font-size: 11px; text-anchor: middle; fill: var(--muted); }
#graph .edge { fill: none; stroke: #7d8b99; stroke-width: 1.6; }
#graph .edge-kernel { stroke: var(--kernel); stroke-dasharray: 5 4; }
#graph marker path { fill: #7d8b99; }
.legend { color: var(--muted); font-size: 13px; text-align: center; margin: 8px 0 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 18px; margin-bottom: 22px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; }
.card h2 { margin: 0 0 6px; font-size: 19px; }
.card p { margin: 0 0 8px; }
.badge { display: inline-block; background: #ddf4ff; color: #0a3069; border-radius: 999px; padding: 1px 10px; margin: 0 6px 4px 0; font-size: 12px; }
dl { display: grid; grid-template-columns: 96px 1fr; gap: 4px 10px; margin: 8px 0; }
dt { color: var(--muted); } dd { margin: 0; min-width: 0; overflow-wrap: anywhere; } dd ol, dd ul { margin: 0; padding-left: 18px; }
small { color: var(--muted); } code { font-size: 13px; }
.folder { color: var(--muted); font-size: 12px; }
.problems { border-color: #cf222e; } .problems li { color: #82071e; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 30px; }
`;

/** The catalog as one static HTML page: the dependency graph as a picture, then a card per image. */
export function renderHtml(catalog: Catalog): string {
  const title = `Images in ${path.basename(catalog.repository)}`;
  const kernels =
    catalog.kernels.length > 0
      ? `<section id="kernels"><h2>Kernels</h2><ul>${catalog.kernels
          .map(
            (k) =>
              `<li><b>${escape(k.name)}</b> ${escape(k.release ?? "")} <code>${k.key.slice(0, 12)}</code> — used by ${k.usedBy.map(escape).join(", ")}</li>`,
          )
          .join("")}</ul></section>`
      : "";
  const problems =
    catalog.problems.length > 0
      ? `<section class="problems"><h2>Problems</h2><ul>${catalog.problems.map((p) => `<li>${escape(p)}</li>`).join("")}</ul></section>`
      : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title><style>${STYLE}</style></head>
<body><header><h1>${escape(title)}</h1><p>${catalog.images.length} image${catalog.images.length === 1 ? "" : "s"}, ${catalog.kernels.length} kernel${catalog.kernels.length === 1 ? "" : "s"}</p></header>
<main>${problems}<section><h2>How they build on each other</h2>${graphSvg(catalog)}
<p class="legend">solid arrow: builds on (base → derived) · dashed arrow: boots (image → kernel)</p></section>
<div class="cards">${catalog.images.map(card).join("")}</div>${kernels}</main>
<footer>Generated by antidote-images catalog.</footer></body></html>
`;
}
