import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import * as engineGrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as enginePb from "@pulumi/pulumi/proto/engine_pb";
import * as providerPb from "@pulumi/pulumi/proto/provider_pb";
import * as resourceGrpc from "@pulumi/pulumi/proto/resource_grpc_pb";
import * as resourcePb from "@pulumi/pulumi/proto/resource_pb";
import { decode, encode } from "./properties";

/** What the program asked the engine to register: one resource, as the engine sees it. */
export interface Registration {
  urn: string;
  type: string;
  name: string;
  /** A custom resource (one a provider creates); components are not. */
  custom: boolean;
  /** The parent's URN; the stack has none. */
  parent?: string;
  /** URNs the resource depends on (`dependsOn` and the resources its inputs came from). */
  dependencies: string[];
  /** Input property → the URNs its value came from. */
  propertyDependencies: Record<string, string[]>;
  /** Inputs, decoded (secrets as `Secret`, unknowns as `UNKNOWN`). */
  inputs: Record<string, unknown>;
  /** Explicit provider reference (`<urn>::<id>`), when the program gave one. */
  provider?: string;
  /** `customTimeouts` as the program set them, in milliseconds; undefined where unset (the provider's default). */
  customTimeouts: { create?: number; update?: number; delete?: number };
  retainOnDelete: boolean;
}

/** How a registration turned out, as the engine reports it to the program (`--continue-on-error` semantics). */
export type RegistrationResult = "success" | "fail" | "skip";

export interface RegistrationResponse {
  id?: string;
  /** Output properties (plain values, `Secret`, `UNKNOWN`); for a failed or skipped resource, what is known. */
  outputs: Record<string, unknown>;
  /** @default "success" */
  result?: RegistrationResult;
}

export type LogSeverity = "debug" | "info" | "warning" | "error";

/** The engine's side: what happens to each registration (recorded, performed, previewed). */
export interface EngineHandler {
  /** A custom resource to create (or to preview). The engine answers only when this settles. */
  register(registration: Registration): Promise<RegistrationResponse>;
  /** A diagnostic the program logged (`pulumi.log`, or the language host reporting the program's failure). */
  log?(severity: LogSeverity, message: string, urn: string): void;
}

/** A gRPC unary handler from a function of the request; a thrown error or rejection is the call's error. */
function unary<Req, Res>(fn: (req: Req) => Res | Promise<Res>) {
  return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (err: Error) => callback({ code: grpc.status.UNKNOWN, details: err.message }),
      );
  };
}

const SEVERITIES: Record<number, LogSeverity> = {
  [enginePb.LogSeverity.DEBUG]: "debug",
  [enginePb.LogSeverity.INFO]: "info",
  [enginePb.LogSeverity.WARNING]: "warning",
  [enginePb.LogSeverity.ERROR]: "error",
};

const RESULTS: Record<RegistrationResult, resourcePb.Result> = {
  success: resourcePb.Result.SUCCESS,
  fail: resourcePb.Result.FAIL,
  skip: resourcePb.Result.SKIP,
};

/**
 * Features this engine supports, as the SDK asks for them (`SupportsFeature`). `secrets`: secret inputs arrive
 * wrapped, so they can be kept out of what is shown. `resourceReferences`: resources passed as values arrive as
 * references. Everything else (transforms, hooks, parameterized packages…) the program does not use, and an engine
 * that says no makes the SDK fail loudly if that ever changes.
 */
const FEATURES = new Set(["secrets", "resourceReferences"]);

/**
 * A resource monitor and engine over gRPC on loopback: the engine's side of the protocol Pulumi's language host
 * speaks (`pulumirpc.ResourceMonitor`, `pulumirpc.Engine`). It answers the program as the Pulumi engine does —
 * components at once, custom resources when the handler has performed (or previewed) them — and records every
 * registration, the stack's outputs and the program's diagnostics.
 */
export class EngineServer {
  readonly registrations: Registration[] = [];
  readonly logs: { severity: LogSeverity; message: string; urn: string }[] = [];
  /** URN → outputs registered with `registerOutputs` (the stack's are the program's exports). */
  readonly outputs = new Map<string, Record<string, unknown>>();
  /** Functions the program invoked, which this engine does not provide. */
  readonly unsupportedCalls: string[] = [];
  rootUrn = "";
  private readonly server = new grpc.Server();
  private address = "";

  constructor(
    readonly project: string,
    readonly stack: string,
    private readonly handler: EngineHandler,
  ) {
    this.server.addService(resourceGrpc.ResourceMonitorService, this.monitorService());
    this.server.addService(engineGrpc.EngineService, this.engineService());
  }

  /** Starts serving on a free loopback port; returns `127.0.0.1:<port>`. */
  async start(): Promise<string> {
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.address = `127.0.0.1:${port}`;
    return this.address;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  /** The stack resource's outputs (the program's exports). */
  stackOutputs(): Record<string, unknown> {
    return this.outputs.get(this.rootUrn) ?? {};
  }

  /** `urn:pulumi:<stack>::<project>::<parent types$>type::<name>`, as the engine makes it. */
  private urnOf(type: string, name: string, parent: string): string {
    const parentType = parent ? parent.split("::")[2] : "";
    const qualified = parentType && parentType !== "pulumi:pulumi:Stack" ? `${parentType}$${type}` : type;
    return `urn:pulumi:${this.stack}::${this.project}::${qualified}::${name}`;
  }

  private monitorService(): grpc.UntypedServiceImplementation {
    return {
      supportsFeature: unary((req: resourcePb.SupportsFeatureRequest) =>
        new resourcePb.SupportsFeatureResponse().setHassupport(FEATURES.has(req.getId())),
      ),
      registerResource: unary((req: resourcePb.RegisterResourceRequest) => this.registerResource(req)),
      registerResourceOutputs: unary((req: resourcePb.RegisterResourceOutputsRequest) => {
        this.outputs.set(
          req.getUrn(),
          decode(req.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>,
        );
        return new Empty();
      }),
      invoke: unary((req: resourcePb.ResourceInvokeRequest) => {
        this.unsupportedCalls.push(req.getTok());
        const failure = new providerPb.CheckFailure().setReason(
          `this engine provides no function ${req.getTok()}`,
        );
        return new providerPb.InvokeResponse().setFailuresList([failure]);
      }),
      signalAndWaitForShutdown: unary(() => new Empty()),
    };
  }

  private engineService(): grpc.UntypedServiceImplementation {
    return {
      log: unary((req: enginePb.LogRequest) => {
        const severity = SEVERITIES[req.getSeverity()] ?? "info";
        this.logs.push({ severity, message: req.getMessage(), urn: req.getUrn() });
        this.handler.log?.(severity, req.getMessage(), req.getUrn());
        return new Empty();
      }),
      getRootResource: unary(() => new enginePb.GetRootResourceResponse().setUrn(this.rootUrn)),
      setRootResource: unary((req: enginePb.SetRootResourceRequest) => {
        this.rootUrn = req.getUrn();
        return new enginePb.SetRootResourceResponse();
      }),
    };
  }

  private async registerResource(
    req: resourcePb.RegisterResourceRequest,
  ): Promise<resourcePb.RegisterResourceResponse> {
    const urn = this.urnOf(req.getType(), req.getName(), req.getParent());
    const timeouts = req.getCustomtimeouts();
    const registration: Registration = {
      urn,
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      parent: req.getParent() || undefined,
      dependencies: req.getDependenciesList(),
      propertyDependencies: {},
      inputs: decode(req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>,
      provider: req.getProvider() || undefined,
      customTimeouts: {
        create: parseDuration(timeouts?.getCreate()),
        update: parseDuration(timeouts?.getUpdate()),
        delete: parseDuration(timeouts?.getDelete()),
      },
      retainOnDelete: req.getRetainondelete() ?? false,
    };
    req.getPropertydependenciesMap().forEach((deps, key) => {
      registration.propertyDependencies[key] = deps.getUrnsList();
    });
    this.registrations.push(registration);
    const response = new resourcePb.RegisterResourceResponse().setUrn(urn);
    if (!registration.custom) return response.setObject(Struct.fromJavaScript({}));
    const answer = await this.handler.register(registration);
    return response
      .setId(answer.id ?? "")
      .setObject(Struct.fromJavaScript(encode(answer.outputs) as Record<string, never>))
      .setResult(RESULTS[answer.result ?? "success"]);
  }
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration as `customTimeouts` takes them (`90m`, `1h30m`, `45s`) in milliseconds; empty is undefined. */
export function parseDuration(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.map((p) => p[0]).join("") !== text)
    throw new Error(`not a duration: '${text}' (expected e.g. 90m, 1h30m)`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * DURATION_UNITS[unit], 0);
}
