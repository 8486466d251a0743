// Validates Kubernetes manifests: node validate.mjs [--crd CRD.yaml]... FILE... (or - for stdin).
// Built-in kinds go through kubernetes-models (the Kubernetes 1.34 OpenAPI schema), ServiceMonitors
// through prometheus-operator's models, custom resources through the openAPIV3Schema of a CRD given
// with --crd. Prints one line per object ("ok KIND NAME" or "invalid KIND NAME: why") and exits 1
// when any object is invalid or of a kind nothing here can validate.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import Ajv from "ajv";

const args = process.argv.slice(2);
const crds = [];
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--crd") crds.push(...yaml.loadAll(readFileSync(args[++i], "utf8")).filter(Boolean));
  else files.push(args[i]);
}

const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
for (const format of ["int32", "int64", "float", "double", "byte", "quantity"]) ajv.addFormat(format, true);
ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);

// Unknown fields are errors, as `kubectl apply` (strict field validation) makes them, except where
// the schema keeps them (x-kubernetes-preserve-unknown-fields) or maps them (additionalProperties).
function strict(schema) {
  if (!schema || typeof schema !== "object") return schema;
  for (const key of ["properties", "patternProperties"]) {
    for (const child of Object.values(schema[key] ?? {})) strict(child);
  }
  if (schema.items) strict(schema.items);
  if (typeof schema.additionalProperties === "object") strict(schema.additionalProperties);
  if (schema.properties && schema.additionalProperties === undefined && !schema["x-kubernetes-preserve-unknown-fields"]) {
    schema.additionalProperties = false;
  }
  return schema;
}

const custom = new Map();
for (const crd of crds) {
  for (const version of crd.spec.versions) {
    const schema = strict(structuredClone(version.schema.openAPIV3Schema));
    // metadata is the API server's to check.
    if (schema.properties) schema.properties.metadata = { type: "object" };
    custom.set(`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`, ajv.compile(schema));
  }
}

async function model(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const candidates = group === "monitoring.coreos.com"
    ? [`@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`]
    : [group === "" ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`];
  for (const path of candidates) {
    try {
      return (await import(path))[kind];
    } catch {
      // not a kind this package knows
    }
  }
  return undefined;
}

let failed = 0;
for (const file of files) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  for (const doc of yaml.loadAll(text)) {
    if (!doc) continue;
    const name = `${doc.kind ?? "?"} ${doc.metadata?.name ?? "?"}`;
    if (!doc.apiVersion || !doc.kind) {
      console.log(`invalid ${name}: no apiVersion or kind`);
      failed++;
      continue;
    }
    const check = custom.get(`${doc.apiVersion}/${doc.kind}`);
    if (check) {
      if (check(doc)) console.log(`ok ${name}`);
      else {
        console.log(`invalid ${name}: ${ajv.errorsText(check.errors)}`);
        failed++;
      }
      continue;
    }
    const Model = await model(doc.apiVersion, doc.kind);
    if (!Model) {
      console.log(`invalid ${name}: no schema for ${doc.apiVersion} ${doc.kind}`);
      failed++;
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`ok ${name}`);
    } catch (e) {
      console.log(`invalid ${name}: ${String(e.message ?? e).split("\n")[0]}`);
      failed++;
    }
  }
}
process.exit(failed > 0 ? 1 : 0);
