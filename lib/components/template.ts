import * as pulumi from "@pulumi/pulumi";
import { templateStep } from "../steps/template";
import { StepComponent } from "./step-command";

export interface TemplateArgs {
  /** Path of the template file; `{{name}}` placeholders are replaced with `vars`. */
  template: string;
  /** Name of the rendered file in the artifact. @default the template's file name */
  output?: string;
  /** Placeholder values. @default {} */
  vars?: Record<string, string>;
  /** Image the step belongs to. @default the component's name */
  image?: string;
}

/** A file rendered from a template: the smallest step, used by `images/hello` to prove the plumbing. */
export class Template extends StepComponent {
  constructor(name: string, args: TemplateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("antidote:images:Template", name, {}, opts);
    const output = args.output ?? args.template.split("/").pop() ?? "";
    this.buildStep(name, {
      step: templateStep,
      image: args.image ?? name,
      args: { output, vars: args.vars ?? {} },
      files: { template: args.template },
    });
    this.registerStepOutputs();
  }
}
