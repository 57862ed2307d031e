import * as pulumi from "@pulumi/pulumi";
import { archiveStep } from "../steps/archive";
import { BuiltStep, StepComponent } from "./step-command";

export interface ArchiveArgs {
  /** Steps whose primary files go into the archive, by the folder name they get in it. */
  members: Record<string, BuiltStep>;
  /** Archive file name. @default `<name>.tar.gz` */
  output?: string;
  /** Image the step belongs to. @default the component's name */
  image?: string;
}

/** A reproducible tarball of other steps' outputs. */
export class Archive extends StepComponent {
  constructor(name: string, args: ArchiveArgs, opts?: pulumi.ComponentResourceOptions) {
    super("antidote:images:Archive", name, {}, opts);
    if (Object.keys(args.members).length === 0) {
      throw new Error(`${name}: Archive needs at least one member step (args.members is empty)`);
    }
    const output = args.output ?? `${name}.tar.gz`;
    this.buildStep(name, {
      step: archiveStep,
      image: args.image ?? name,
      args: { output },
      parents: args.members,
    });
    this.registerStepOutputs();
  }
}
