import { archiveStep } from "./archive";
import { bootTestStep } from "./boot-test";
import { containerStep } from "./container";
import { diskStep } from "./disk";
import { diskImportStep } from "./disk-import";
import { kernelStep } from "./kernel";
import { launcherStep } from "./launcher";
import { rootfsStep } from "./rootfs";
import { StepDefinition } from "./step";
import { templateStep } from "./template";

/** Every step kind the `step` command can build, by kind. */
export const stepDefinitions: Record<string, StepDefinition<unknown>> = Object.fromEntries(
  [
    archiveStep,
    bootTestStep,
    containerStep,
    diskStep,
    diskImportStep,
    kernelStep,
    launcherStep,
    rootfsStep,
    templateStep,
  ].map((step) => [step.kind, step as StepDefinition<unknown>]),
);
