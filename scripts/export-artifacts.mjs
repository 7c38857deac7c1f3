// Copies the ABI and bytecode of the deployable contracts from forge's output
// (contracts/out) into contracts/artifacts/, the checked-in files the Rust
// bindings are generated from. Run by scripts/export-artifacts.sh.
// Usage: node export-artifacts.mjs <forge-out-dir> <dest-dir>
import fs from 'node:fs';
import path from 'node:path';

const [outDir, destDir] = process.argv.slice(2);
const contracts = ['OracleHub', 'FeedAdapter'];
fs.mkdirSync(destDir, { recursive: true });
for (const name of contracts) {
  const src = JSON.parse(fs.readFileSync(path.join(outDir, `${name}.sol`, `${name}.json`), 'utf8'));
  const trimmed = {
    abi: src.abi,
    bytecode: { object: src.bytecode.object },
    deployedBytecode: { object: src.deployedBytecode.object },
  };
  fs.writeFileSync(path.join(destDir, `${name}.json`), JSON.stringify(trimmed, null, 2) + '\n');
}
