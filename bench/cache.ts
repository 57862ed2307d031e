// What the read-only cache (antidote-images:cacheStore) costs a step when it cannot help, and what a hit costs: a
// small step's put in a fresh store without a cache, with the cache on a closed port (the first probe, then a step
// that finds the finding in the store), on a port that never answers (the probe's timeout), and a hit copied from a
// stand-in bucket. Each a median over RUNS fresh stores; the library's load is in the first figure of each store.
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { sha256 } from "../lib/keys";
import { BucketCache } from "../lib/store/bucket-cache";
import { GcsStore } from "../lib/store/gcs";
import { parseGsUrl } from "../lib/store/gcs-bucket";
import { LocalStore } from "../lib/store/local";
import { GcsStandIn } from "../test/gcs-stand-in";
import { tempDir } from "../test/helpers";
import { info } from "../test/store-contract";

const RUNS = 5;
const URL = "gs://antidote-bench-cache/nightly";

const build = async (dir: string) => {
  fs.writeFileSync(path.join(dir, "out.txt"), "built");
  return { primary: "out.txt" };
};

function store(endpoint?: string): LocalStore {
  const local: LocalStore = new LocalStore(tempDir("bench-cache"), {
    readThrough: endpoint
      ? [
          new BucketCache(parseGsUrl(URL), {
            apiEndpoint: endpoint,
            env: {},
            stateDir: () => local.cacheDir("cache-store"),
            warn: () => undefined,
          }),
        ]
      : [],
  });
  return local;
}

async function timed(what: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await what();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function report(label: string, ms: number[]): void {
  const sorted = [...ms].sort((a, b) => a - b);
  const f = (v: number) => `${v.toFixed(0)} ms`;
  console.log(
    `${label.padEnd(46)} median ${f(sorted[Math.floor(sorted.length / 2)])}  fastest ${f(sorted[0])}  slowest ${f(sorted[sorted.length - 1])}`,
  );
}

async function main(): Promise<void> {
  const standIn = new GcsStandIn();
  const endpoint = await standIn.start();
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const silentPort = (silent.address() as net.AddressInfo).port;
  const hitKey = sha256("bench-cache-hit");
  await new GcsStore(parseGsUrl(URL), new LocalStore(tempDir("bench-cache-nightly")), {
    apiEndpoint: endpoint,
    env: {},
    progress: () => undefined,
  }).put(hitKey, info, build);

  const figures: Record<string, number[]> = {};
  const add = (label: string, ms: number) => (figures[label] ??= []).push(ms);
  for (let run = 0; run < RUNS; run++) {
    const key = (n: string) => sha256(`bench-cache-${run}-${n}`);
    add("no cache: a step built", await timed(() => store().put(key("none"), info, build)));
    const offline = store(`http://127.0.0.1:${closed}`);
    add("closed port: first step (probe, warning)", await timed(() => offline.put(key("a"), info, build)));
    add(
      "closed port: next step (finding in the store)",
      await timed(() => offline.put(key("b"), info, build)),
    );
    add(
      "never answers: first step (5 s probe timeout)",
      await timed(() => store(`http://127.0.0.1:${silentPort}`).put(key("c"), info, build)),
    );
    add("stand-in: a hit copied in", await timed(() => store(endpoint).put(hitKey, info, build)));
  }
  for (const [label, ms] of Object.entries(figures)) report(label, ms);
  for (const s of sockets) s.destroy();
  silent.close();
  await standIn.stop();
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
