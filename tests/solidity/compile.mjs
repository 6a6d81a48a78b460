// Compiles one test-only Solidity source (tests/solidity/*.sol) with the pinned solc-js from
// tools/node_modules and the same settings as contracts/build.mjs, and prints the named
// contract's creation and runtime bytecode as JSON on stdout:
//
//   node tests/solidity/compile.mjs <file.sol> <ContractName>
//   {"bytecode":"0x...","deployedBytecode":"0x..."}
//
// The contract tests run it (tests/src/fixture.rs, `compile_test_contract`) so that an
// attacker's contract is built from the source next to this script, never from a stale
// blob. Warnings count as errors, as in contracts/build.mjs.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SETTINGS = {
  evmVersion: "cancun",
  viaIR: true,
  optimizer: { enabled: true, runs: 1000000 },
  metadata: { appendCBOR: false },
};

function fail(message) {
  console.error(`tests/solidity/compile.mjs: ${message}`);
  process.exit(1);
}

const [file, name] = process.argv.slice(2);
if (!file || !name) fail("usage: node tests/solidity/compile.mjs <file.sol> <ContractName>");

let solc;
try {
  solc = createRequire(join(ROOT, "tools", "package.json"))("solc");
} catch {
  fail("solc-js is not installed in tools/node_modules; run `npm ci --prefix tools`");
}

const sourceName = basename(file);
const input = {
  language: "Solidity",
  sources: { [sourceName]: { content: readFileSync(file, "utf8") } },
  settings: {
    ...SETTINGS,
    outputSelection: { "*": { "*": ["evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const problems = (output.errors || []).filter((e) => e.severity !== "info");
if (problems.length > 0) {
  for (const e of problems) console.error(e.formattedMessage || e.message);
  fail(`${problems.length} compiler error(s) or warning(s)`);
}
const contract = output.contracts?.[sourceName]?.[name];
if (!contract) fail(`no contract ${name} in ${file}`);
console.log(
  JSON.stringify({
    bytecode: "0x" + contract.evm.bytecode.object,
    deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
  }),
);
