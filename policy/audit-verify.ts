/**
 * `npm run audit:verify -- <log.jsonl>…`: checks each audit log's hash chain and reports the first
 * broken link (exit code 1), or how many records verified.
 */
import { readFile } from 'node:fs/promises';
import { verifyAuditLog } from './audit.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: npm run audit:verify -- <audit log.jsonl> [more logs]');
  process.exit(2);
}
let broken = false;
for (const file of files) {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    console.error(`${file}: cannot be read (${error instanceof Error ? error.message : String(error)})`);
    broken = true;
    continue;
  }
  const result = verifyAuditLog(text);
  if (result.ok) console.log(`${file}: OK, ${result.records} records, last hash ${result.lastHash}`);
  else {
    broken = true;
    console.log(`${file}: BROKEN at line ${result.line}: ${result.reason} (${result.records} records verified before it)`);
  }
}
process.exit(broken ? 1 : 0);
