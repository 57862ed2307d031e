/// <reference lib="dom" />
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { chromium } from "playwright-core";
import { buildCatalog } from "../../lib/catalog/catalog";
import { renderHtml } from "../../lib/catalog/html";
import { curriculumRepo, storeWithBuilds } from "../catalog-fixture";
import { tempDir } from "../helpers";

/** Flags that keep Debian's Chromium off the network it cannot reach here. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("catalog page in headless Chromium", () => {
  it("renders, shows a card per image, and draws every edge of the graph between its two nodes", async () => {
    const { store } = await storeWithBuilds();
    const catalog = await buildCatalog(curriculumRepo(), store);
    const page = path.join(tempDir("catalog-page"), "catalog.html");
    fs.writeFileSync(page, renderHtml(catalog));

    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
    try {
      const tab = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
      await tab.goto(`file://${page}`);
      const cards = await tab.$$eval(".card", (els) =>
        els.map((el) => ({
          image: el.getAttribute("data-image"),
          height: el.getBoundingClientRect().height,
        })),
      );
      assert.deepStrictEqual(
        cards.map((c) => c.image),
        ["base", "router", "tools"],
      );
      assert.ok(
        cards.every((c) => c.height > 100),
        `cards render: ${JSON.stringify(cards)}`,
      );

      // Each drawn edge must start at its source node's box and end at its target's.
      const edges = await tab.$$eval("#graph .edge", (paths) =>
        paths.map((p) => {
          const geometry = p as unknown as SVGPathElement;
          const box = (id: string | null) => {
            const node = document.querySelector(`#graph [data-node="${id}"] rect`);
            const r = node?.getBoundingClientRect();
            return r ? { left: r.left, right: r.right, top: r.top, bottom: r.bottom } : null;
          };
          const svg = geometry.ownerSVGElement as SVGSVGElement;
          const matrix = geometry.getScreenCTM() as DOMMatrix;
          const point = (at: number) => {
            const p0 = geometry.getPointAtLength(at);
            const p1 = svg.createSVGPoint();
            p1.x = p0.x;
            p1.y = p0.y;
            const s = p1.matrixTransform(matrix);
            return { x: s.x, y: s.y };
          };
          const length = geometry.getTotalLength();
          return {
            from: p.getAttribute("data-from"),
            to: p.getAttribute("data-to"),
            length,
            start: point(0),
            end: point(length),
            fromBox: box(p.getAttribute("data-from")),
            toBox: box(p.getAttribute("data-to")),
          };
        }),
      );
      const expected = [
        "base→router",
        "base→tools",
        "base→kernel:kernel-6.1",
        "router→kernel:kernel-6.1",
        "tools→kernel:kernel-6.1",
      ].sort();
      assert.deepStrictEqual(edges.map((e) => `${e.from}→${e.to}`).sort(), expected);
      for (const e of edges) {
        assert.ok(e.fromBox && e.toBox, `both nodes of ${e.from}→${e.to} are drawn`);
        assert.ok(e.length > 20, `${e.from}→${e.to} has length ${e.length}`);
        const near = (v: number, target: number) => Math.abs(v - target) < 8;
        assert.ok(
          near(e.start.y, e.fromBox.bottom) && e.start.x > e.fromBox.left && e.start.x < e.fromBox.right,
          `${e.from}→${e.to} starts at ${e.from}`,
        );
        assert.ok(
          near(e.end.y, e.toBox.top) && e.end.x > e.toBox.left && e.end.x < e.toBox.right,
          `${e.from}→${e.to} ends at ${e.to}`,
        );
      }
      await tab.screenshot({ path: path.join(path.dirname(page), "catalog.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
