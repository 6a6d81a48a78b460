// Compiles MediBlock's Solidity sources (contracts/src/*.sol) with the pinned solc-js from
// tools/node_modules and writes one artifact per deployable contract or interface to
// contracts/out/<Name>.json: ABI, creation bytecode, deployed bytecode and the exact
// compiler settings, in the shape alloy's `sol!` macro reads.
//
//   node contracts/build.mjs          compile and (re)write the artifacts
//   node contracts/build.mjs --check  compile in memory; exit 1, naming each contract,
//                                     when the committed artifacts differ
//
// The output is deterministic: fixed settings, sorted inputs, fixed key order.

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync, unlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SRC = join(ROOT, "contracts", "src");
const OUT = join(ROOT, "contracts", "out");

/** The compiler release every artifact is built with (tools/package.json pins it). */
const SOLC_VERSION = "0.8.37";

/**
 * Fixed compiler settings, recorded in every artifact. `cancun` bytecode runs on every
 * current L1 and L2; the gas figures in docs/BENCHMARKS.md are measured on a later
 * hardfork whose costs for these opcodes are the same. The optimizer is tuned for cheap
 * calls (many runs), not for a small deployment.
 */
const SETTINGS = {
  evmVersion: "cancun",
  viaIR: true,
  optimizer: { enabled: true, runs: 1000000 },
  metadata: { appendCBOR: false },
};

/** First calldata bytes that the registry's fallback treats as packed operations. */
const PACKED_OPS = ["01", "02", "03"];

/**
 * The registry's ABI calls are served by its admin module through DELEGATECALL, so the
 * registry's artifact carries the module's functions next to its own constructor, events
 * and errors: that is the interface callers use at the registry's address.
 */
const DELEGATES = { MediBlockRegistry: "MediBlockRegistryAdmin" };

function fail(message) {
  console.error(`contracts/build.mjs: ${message}`);
  process.exit(1);
}

function loadSolc() {
  const toolsPackage = join(ROOT, "tools", "package.json");
  let solc;
  try {
    solc = createRequire(toolsPackage)("solc");
  } catch {
    fail(
      "solc-js is not installed in tools/node_modules. Run the project's automation " +
        "(it runs `npm ci --prefix tools`), or `npm ci --prefix tools` yourself.",
    );
  }
  const version = solc.version();
  if (!version.startsWith(`${SOLC_VERSION}+`)) {
    fail(`expected solc ${SOLC_VERSION}, found ${version}; run \`npm ci --prefix tools\``);
  }
  return solc;
}

function sha256(text) {
  return "0x" + createHash("sha256").update(text).digest("hex");
}

function compile(solc) {
  const files = readdirSync(SRC)
    .filter((f) => f.endsWith(".sol"))
    .sort();
  const sources = {};
  for (const f of files) {
    sources[`src/${f}`] = { content: readFileSync(join(SRC, f), "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: {
        "*": {
          "": ["ast"],
          "*": ["abi", "metadata", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"],
        },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = (output.errors || []).filter((e) => e.severity !== "info");
  if (problems.length > 0) {
    for (const e of problems) console.error(e.formattedMessage || e.message);
    fail(`${problems.length} compiler error(s) or warning(s); warnings count as errors`);
  }

  const sourceHashes = {};
  for (const name of Object.keys(sources)) sourceHashes[name] = { sha256: sha256(sources[name].content) };

  const compiled = new Map();
  for (const sourceName of Object.keys(sources)) {
    const kinds = new Map();
    for (const node of output.sources[sourceName].ast.nodes) {
      if (node.nodeType === "ContractDefinition") {
        kinds.set(node.name, node.abstract ? "abstract" : node.contractKind);
      }
    }
    for (const [name, contract] of Object.entries(output.contracts[sourceName])) {
      const kind = kinds.get(name);
      if (kind !== "contract" && kind !== "interface") continue;
      compiled.set(name, { sourceName, kind, contract });
    }
  }

  const artifacts = new Map();
  for (const [name, { sourceName, kind, contract }] of compiled) {
    let abi = contract.abi;
    let methodIdentifiers = contract.evm.methodIdentifiers;
    const delegate = DELEGATES[name];
    if (delegate) {
      const module = compiled.get(delegate).contract;
      abi = mergeAbi(abi, module.abi);
      methodIdentifiers = { ...methodIdentifiers, ...module.evm.methodIdentifiers };
      checkPackedOps(delegate, module.evm.methodIdentifiers);
    }
    const artifact = { contractName: name, sourceName, kind, abi };
    if (kind === "contract") {
      artifact.bytecode = { object: "0x" + contract.evm.bytecode.object };
      artifact.deployedBytecode = { object: "0x" + contract.evm.deployedBytecode.object };
    }
    artifact.methodIdentifiers = methodIdentifiers;
    if (delegate) artifact.abiIncludes = delegate;
    artifact.compiler = { name: "solc-js", version: solc.version(), settings: SETTINGS };
    // The source files this contract is built from (its own and its imports, and those
    // of the module whose ABI it carries), with their hashes.
    const used = new Set(Object.keys(JSON.parse(contract.metadata).sources));
    if (delegate) {
      for (const f of Object.keys(JSON.parse(compiled.get(delegate).contract.metadata).sources)) used.add(f);
    }
    artifact.sources = Object.fromEntries([...used].sort().map((f) => [f, sourceHashes[f]]));
    artifacts.set(name, JSON.stringify(artifact, null, 2) + "\n");
  }
  return artifacts;
}

/** `own` followed by the items of `other` it does not already have (same type and name). */
function mergeAbi(own, other) {
  const key = (item) => `${item.type}:${item.name ?? ""}`;
  const seen = new Set(own.map(key));
  return [...own, ...other.filter((item) => !seen.has(key(item)))];
}

/** The registry's packed operations must never be taken for a named function. */
function checkPackedOps(name, methodIdentifiers) {
  for (const [signature, selector] of Object.entries(methodIdentifiers)) {
    if (PACKED_OPS.includes(selector.slice(0, 2))) {
      fail(
        `${name}.${signature} has selector 0x${selector}, whose first byte is a packed ` +
          `operation of the fallback; rename the function`,
      );
    }
  }
}

function main() {
  const args = process.argv.slice(2);
  const check = args.includes("--check");
  if (args.some((a) => a !== "--check")) fail("usage: node contracts/build.mjs [--check]");

  const artifacts = compile(loadSolc());
  const existing = existsSync(OUT)
    ? readdirSync(OUT).filter((f) => f.endsWith(".json"))
    : [];

  if (check) {
    const stale = [];
    for (const [name, text] of artifacts) {
      const path = join(OUT, `${name}.json`);
      if (!existsSync(path)) stale.push(`${name} (contracts/out/${name}.json is missing)`);
      else if (readFileSync(path, "utf8") !== text) stale.push(`${name} (contracts/out/${name}.json differs)`);
    }
    for (const f of existing) {
      const name = f.slice(0, -".json".length);
      if (!artifacts.has(name)) stale.push(`${name} (contracts/out/${f} has no source)`);
    }
    if (stale.length > 0) {
      for (const s of stale) console.error(`stale artifact: ${s}`);
      fail("committed artifacts differ from a fresh compile; run `node contracts/build.mjs` and commit contracts/out/");
    }
    console.log(`contracts/build.mjs: ${artifacts.size} artifacts match the sources`);
    return;
  }

  mkdirSync(OUT, { recursive: true });
  for (const f of existing) {
    if (!artifacts.has(f.slice(0, -".json".length))) unlinkSync(join(OUT, f));
  }
  for (const [name, text] of artifacts) {
    writeFileSync(join(OUT, `${name}.json`), text);
  }
  console.log(`contracts/build.mjs: wrote ${artifacts.size} artifacts to ${relative(ROOT, OUT)}/`);
}

main();
