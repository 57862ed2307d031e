import { ErrorObject } from "ajv";

/** One problem in a validated document: the entry it is about ("hosts.r1.files[0].mode") and what was wrong. */
export interface Problem {
  entry: string;
  message: string;
}

/** `/ports/1/port` → `ports[1].port` */
export function entryName(pointer: string): string {
  return pointer
    .split("/")
    .slice(1)
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part.replace(/~1/g, "/").replace(/~0/g, "~")}`))
    .join("")
    .replace(/^\./, "");
}

function valueAt(doc: unknown, pointer: string): unknown {
  return pointer
    .split("/")
    .slice(1)
    .reduce<unknown>(
      (v, part) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined),
      doc,
    );
}

/** The schema node at an error's `schemaPath` ("#/properties/vars/propertyNames"), less `up` trailing parts. */
function schemaAt(schema: object, schemaPath: string, up = 0): Record<string, unknown> {
  const parts = schemaPath.replace(/^#\//, "").split("/");
  const node = parts
    .slice(0, parts.length - up)
    .reduce<unknown>(
      (v, part) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined),
      schema,
    );
  return node !== null && typeof node === "object" ? (node as Record<string, unknown>) : {};
}

/** The fields an object schema takes: "port, name (and optionally protocol, description)". */
function fieldsOf(node: Record<string, unknown>): string {
  const fields = Object.keys(node.properties ?? {});
  const required = (node.required as string[] | undefined) ?? [];
  const optional = fields.filter((f) => !required.includes(f)).join(", ");
  if (required.length === 0) return `${optional} (all optional)`;
  return `${required.join(", ")}${optional ? ` (and optionally ${optional})` : ""}`;
}

/**
 * Ajv's errors (`allErrors`) as problems naming the field, what was expected and what was found. `patterns`
 * describes a schema's patterns in words ("an octal mode like \"0640\""); others are shown as the regex.
 */
export function schemaProblems(
  errors: ErrorObject[],
  doc: unknown,
  schema: object,
  patterns: Record<string, string> = {},
): Problem[] {
  const problems: Problem[] = [];
  for (const error of errors) {
    // A failed `propertyNames` comes twice: the name's own error (with `propertyName`) and the summary, used here.
    if (error.propertyName !== undefined) continue;
    const params = error.params as Record<string, unknown>;
    const field = entryName(error.instancePath);
    const got = JSON.stringify(valueAt(doc, error.instancePath));
    const at = (child: string) => (field ? `${field}.${child}` : child);
    const problem = (entry: string, message: string) => problems.push({ entry, message });
    const pattern = (p: unknown) => patterns[String(p)] ?? `a value matching ${String(p)}`;
    switch (error.keyword) {
      case "required":
        problem(
          at(String(params.missingProperty)),
          // Inside a list or object, say what the entry as a whole takes: the author may have guessed its shape.
          `required, but missing${field ? ` (an entry takes ${fieldsOf(schemaAt(schema, error.schemaPath, 1))})` : ""}`,
        );
        break;
      case "additionalProperties":
        problem(
          at(String(params.additionalProperty)),
          `unknown field (expected one of ${Object.keys(schemaAt(schema, error.schemaPath, 1).properties ?? {}).join(", ")})`,
        );
        break;
      case "propertyNames": {
        const name = String(params.propertyName);
        problem(
          at(name),
          `expected ${pattern(schemaAt(schema, error.schemaPath).pattern)}, got ${JSON.stringify(name)}`,
        );
        break;
      }
      case "type": {
        const types = (Array.isArray(params.type) ? params.type : String(params.type).split(",")) as string[];
        const node = schemaAt(schema, error.schemaPath, 1);
        const words = types.map((t) =>
          t === "integer"
            ? "a whole number"
            : t === "array"
              ? "a list"
              : t === "object"
                ? `an object${node.properties ? ` with fields ${fieldsOf(node)}` : ""}`
                : `a ${t}`,
        );
        problem(field || "(document)", `expected ${words.join(" or ")}, got ${got}`);
        break;
      }
      case "enum":
        problem(
          field,
          `expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}, got ${got}`,
        );
        break;
      case "const":
        problem(field, `expected ${JSON.stringify(params.allowedValue)}, got ${got}`);
        break;
      case "pattern":
        problem(field, `expected ${pattern(params.pattern)}, got ${got}`);
        break;
      case "minimum":
      case "maximum":
        problem(
          field,
          `expected ${error.keyword === "minimum" ? "at least" : "at most"} ${params.limit}, got ${got}`,
        );
        break;
      case "minLength":
        problem(field, `expected a non-empty string, got ${got}`);
        break;
      case "minItems":
      case "maxItems":
        problem(
          field,
          `expected ${error.keyword === "minItems" ? "at least" : "at most"} ${params.limit} entries`,
        );
        break;
      case "uniqueItems":
        problem(field, "expected each entry once, got a repeat");
        break;
      default:
        problem(field || "(document)", error.message ?? "invalid");
    }
  }
  return problems;
}
