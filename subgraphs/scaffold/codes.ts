/**
 * Why `npm run domain -- new` refuses a source (each refusal names its code; subgraphs/README.md's
 * table is generated from here by `npm run docs:errors`). A refused scaffold writes nothing: the
 * folder is made beside its destination and moved there whole.
 */
import { fileURLToPath } from 'node:url';
import { EXIT_FAILED, EXIT_REFUSED } from '../../policy/command-line.js';
import type { GeneratedSection } from '../../policy/errors-doc.js';

export const SCAFFOLD_ERRORS = {
  SCAFFOLD_INVALID_NAME: 'The domain name is not lower-case letters, digits and `_`, starting with a letter (at most 63): it names the subgraph and its `<NAME>_WAREHOUSE_URL`.',
  SCAFFOLD_FOLDER_EXISTS: 'The destination folder exists and is not empty: a scaffold never writes over a team\'s files.',
  SCAFFOLD_SOURCE_UNREADABLE: 'The source cannot be read: no such file, no permission, a format the reader rejects, or a database that refuses the connection or the query.',
  SCAFFOLD_SOURCE_FORMAT: 'The source\'s format is not known from its name (`.csv`, `.parquet`, `.jsonl`/`.ndjson`, or a `postgres://` URL with `--table` or `--query`); `--format` names it.',
  SCAFFOLD_SOURCE_TOO_LARGE: 'The source is larger than the limit (`DOMAIN_SOURCE_MAX_BYTES`, default 8 GiB).',
  SCAFFOLD_SOURCE_NOT_UTF8: 'A text source (CSV, JSON lines) holds bytes that are not UTF-8; the byte offset is given. Convert it (`iconv -f <encoding> -t UTF-8`) first.',
  SCAFFOLD_SOURCE_EMPTY: 'The source has no rows (or no columns): nothing to profile, no key to find.',
  SCAFFOLD_TOO_MANY_COLUMNS: 'The source has more columns than one data product may serve (`DOMAIN_SOURCE_MAX_COLUMNS`, default 500).',
  SCAFFOLD_DUPLICATE_COLUMN: 'Two columns have the same name, or names that become the same column once made safe (`First Name` and `first_name`); the names are given.',
  SCAFFOLD_UNSAFE_COLUMN_NAME: 'A column name holds a character that ends or comments SQL (quote, `;`, backslash, `--`, `/*`, a control character): renamed silently, it would hide what the source meant.',
  SCAFFOLD_NO_KEY: 'No column is filled and unique in the rows read, so no key can be proposed; `--key <column>` names one, or add an id column to the source.',
  SCAFFOLD_KEY_NOT_UNIQUE: 'The column `--key` names is missing, empty in some rows, or repeats.',
  SCAFFOLD_USAGE: 'The command line is wrong (an option without its value, `--table` and `--query` together); the usage is printed.',
} as const;

export type ScaffoldErrorCode = keyof typeof SCAFFOLD_ERRORS;

export class ScaffoldError extends Error {
  override name = 'ScaffoldError';
  constructor(
    readonly code: ScaffoldErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
  }
}

/** Where the catalogue's table is (`npm run docs:errors` rewrites it). */
export const SUBGRAPHS_README = fileURLToPath(new URL('../README.md', import.meta.url));

export const SCAFFOLD_ERROR_SECTION: GeneratedSection = {
  start: '<!-- scaffold-errors:start (generated from subgraphs/scaffold/codes.ts by `npm run docs:errors`) -->',
  end: '<!-- scaffold-errors:end -->',
  render: () => ['| code | exit | meaning |', '| --- | --- | --- |', ...Object.entries(SCAFFOLD_ERRORS).map(([code, meaning]) => `| \`${code}\` | ${exitCodeOf(code as ScaffoldErrorCode)} | ${meaning} |`)].join('\n'),
};

/** A refusal of the source is a "no" (exit 1); a source that cannot be read, or a wrong command line, a failure (exit 2). */
export function exitCodeOf(code: ScaffoldErrorCode): number {
  return code === 'SCAFFOLD_SOURCE_UNREADABLE' || code === 'SCAFFOLD_USAGE' ? EXIT_FAILED : EXIT_REFUSED;
}
