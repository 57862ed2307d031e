import * as fs from "fs";
import * as path from "path";
import { Json } from "../keys";
import { argsObject, StepArgsError, StepDefinition } from "./step";

export interface TemplateArgs {
  /** Name of the rendered file. */
  output: string;
  /** Values for the template's `{{name}}` placeholders. */
  vars: Record<string, string>;
}

/** Renders the `template` input file, replacing `{{name}}` with `vars.name`; an unknown placeholder fails. */
export const templateStep: StepDefinition<TemplateArgs> = {
  kind: "template",
  version: 1,
  parseArgs(raw: Json): TemplateArgs {
    const args = argsObject(raw);
    if (typeof args.output !== "string" || !/^[A-Za-z0-9._-]+$/.test(args.output)) {
      throw new StepArgsError("output", "a plain file name", args.output);
    }
    const vars = argsObject(args.vars ?? null, "vars");
    for (const [name, value] of Object.entries(vars)) {
      if (typeof value !== "string") throw new StepArgsError(`vars.${name}`, "a string", value);
    }
    return { output: args.output, vars: vars as Record<string, string> };
  },
  async run(ctx) {
    const template = ctx.files.template;
    if (!template) throw new Error("the step needs a 'template' input file");
    const text = fs.readFileSync(template, "utf8");
    const missing = new Set<string>();
    const rendered = text.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (_, name: string) => {
      if (!(name in ctx.args.vars)) missing.add(name);
      return ctx.args.vars[name] ?? "";
    });
    if (missing.size > 0) {
      throw new Error(
        `${path.basename(template)} uses placeholders with no value: ${[...missing].join(", ")}`,
      );
    }
    fs.writeFileSync(path.join(ctx.out, ctx.args.output), rendered);
    ctx.log.write(`rendered ${rendered.length} bytes into ${ctx.args.output}`);
    return { primary: ctx.args.output, outputs: { bytes: Buffer.byteLength(rendered) } };
  },
};
