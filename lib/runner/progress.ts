import { RunEvent, RunReport, StepRecord } from "./local-runner";

const SYMBOL: Record<StepRecord["status"], string> = {
  queued: "·",
  building: "▶",
  cached: "=",
  built: "✓",
  failed: "✗",
  skipped: "-",
  "would-build": "+",
};

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/**
 * Shows a run as it goes: a line per step state change (image, step, cached/building/done/failed, elapsed), the
 * steps' own progress lines, and on a terminal a status line of what is building, redrawn every second.
 */
export class ProgressDisplay {
  private readonly started = Date.now();
  private readonly building = new Map<string, { record: StepRecord; since: number; last?: string }>();
  private readonly timer: NodeJS.Timeout;
  private statusShown = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly live: boolean = Boolean(process.stderr.isTTY),
  ) {
    // Off a terminal (CI logs) a heartbeat line instead, so a long step does not look like a hang.
    this.timer = live
      ? setInterval(() => this.drawStatus(), 1000)
      : setInterval(() => this.heartbeat(), 60_000);
    this.timer.unref();
  }

  onEvent = (event: RunEvent): void => {
    if (event.type === "log") {
      this.print(`${event.severity === "warning" ? "warning: " : ""}${event.message}`);
      return;
    }
    const { record } = event;
    if (event.type === "progress") {
      const entry = this.building.get(record.name);
      if (entry) entry.last = event.line;
      this.print(`         ${record.image.padEnd(14)} ${record.name.padEnd(24)} │ ${event.line}`);
      return;
    }
    if (record.status === "building") this.building.set(record.name, { record, since: Date.now() });
    else this.building.delete(record.name);
    if (record.status === "queued") return;
    const detail =
      record.status === "building"
        ? `building ${record.key.slice(0, 12)}`
        : record.status === "would-build"
          ? `would build: ${record.reason}`
          : record.status === "failed" || record.status === "skipped"
            ? `${record.status}: ${firstLine(record.error)}`
            : `${record.status}${record.elapsedMs !== undefined ? ` in ${seconds(record.elapsedMs)}` : ""}`;
    this.print(
      `${SYMBOL[record.status]} ${seconds(Date.now() - this.started).padStart(7)} ${record.image.padEnd(14)} ${record.name.padEnd(24)} ${detail}`,
    );
  };

  private print(line: string): void {
    this.clearStatus();
    this.out.write(`${line}\n`);
    this.drawStatus();
  }

  private clearStatus(): void {
    if (this.statusShown) this.out.write("\r\x1b[2K");
    this.statusShown = false;
  }

  private drawStatus(): void {
    if (!this.live || this.building.size === 0) return;
    const now = Date.now();
    const parts = [...this.building.values()].map((b) => `${b.record.name} ${seconds(now - b.since)}`);
    const text = `  [${seconds(now - this.started)}] building: ${parts.join(", ")}`;
    this.out.write(`\r\x1b[2K${text.slice(0, (this.out.columns ?? 120) - 1)}`);
    this.statusShown = true;
  }

  private heartbeat(): void {
    const now = Date.now();
    for (const b of this.building.values()) {
      const last = b.last ? ` — ${b.last}` : "";
      this.print(
        `… ${seconds(now - this.started).padStart(7)} ${b.record.image.padEnd(14)} ${b.record.name.padEnd(24)} still building (${seconds(now - b.since)})${last}`,
      );
    }
  }

  /** Stops the status line and prints the summary, with each failure's cause, the log lines that show it and its
   * log's path (the record's error: the cause on its first line). */
  finish(report: RunReport): void {
    clearInterval(this.timer);
    this.clearStatus();
    const count = (status: StepRecord["status"]) => report.steps.filter((s) => s.status === status).length;
    for (const failed of report.steps.filter((s) => s.status === "failed")) {
      const [cause, ...details] = (failed.error ?? "").split("\n");
      this.out.write(`\n✗ ${failed.image}: ${failed.name} failed: ${cause}\n`);
      if (details.length > 0) this.out.write(`${indent(details.join("\n"))}\n`);
    }
    for (const what of report.unsupported) {
      this.out.write(
        `\n✗ cannot perform ${what}: the local runner builds only what it knows; use the Pulumi CLI\n`,
      );
    }
    const stepMs = report.steps.reduce((sum, s) => sum + (s.result?.elapsedMs ?? 0), 0);
    const summary =
      report.mode === "plan"
        ? `plan: ${count("would-build")} to build, ${count("cached")} cached, ${count("skipped")} skipped`
        : `up: ${count("built")} built, ${count("cached")} cached, ${count("failed")} failed, ` +
          `${count("skipped")} skipped; step time ${seconds(stepMs)}, wall time ${seconds(report.wallMs)}`;
    this.out.write(`\n${summary}\n`);
  }
}

function firstLine(text: string | undefined): string {
  return (text ?? "").split("\n").find((l) => l.trim()) ?? "";
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
