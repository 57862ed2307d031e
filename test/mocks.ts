import * as pulumi from "@pulumi/pulumi";

/** A resource the program registered under mocks. */
export interface RecordedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

/**
 * Installs Pulumi's mock runtime for unit tests: every resource is recorded, commands "print" an empty result, and
 * nothing runs. Returns the list that fills as resources register.
 */
export async function useMocks(
  config: Record<string, string> = {},
  stack = "unit",
): Promise<RecordedResource[]> {
  const resources: RecordedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push({ type: args.type, name: args.name, inputs: args.inputs });
        return { id: args.custom ? `${args.name}-id` : undefined, state: args.inputs };
      },
      call(args) {
        throw new Error(`unexpected function call ${args.token}`);
      },
    },
    "antidote-images",
    stack,
    true,
  );
  pulumi.runtime.setAllConfig(config, []);
  return resources;
}

/** The value of an Output (undefined when unknown). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return (output as unknown as { promise(): Promise<T> }).promise();
}
