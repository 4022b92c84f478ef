/**
 * CSV export for BI tools and spreadsheets: `POST /export/csv` (or GET with the CSRF preflight
 * header) takes a GraphQL query whose one root field is a connection selecting `nodes { … }`, and
 * streams every matching row as CSV, page by page (keyset pages of 500), up to a row cap.
 *
 * Each page runs through the gateway's whole request pipeline as the caller (pre-plan policy,
 * subgraph enforcement, masking, row policies, audit): an export sees exactly what the same query
 * would. Columns are the selected scalar fields of `nodes`, nested objects flattened with `_`
 * (`customer_name`); a list inside a row is refused. Values: numbers as numbers, times as ISO-8601,
 * null as an empty field; a text value that a spreadsheet would run as a formula (`=`, `+`, `-`,
 * `@`, tab, carriage return first) is prefixed with `'`.
 *
 * The body is CSV and nothing else (a note line would be read as data by a BI tool). How the export
 * ended is said in the `X-Export-Status` trailer (announced by the `Trailer` header): `complete`, or
 * `truncated` when the row cap stopped it while rows remain (the caller's `limit`, at most
 * `EXPORT_MAX_ROWS`). A failure after the first row aborts the transfer, so that no client takes a
 * cut file for a whole one; its reason is logged under the request id (`X-Request-Id`).
 */
import type { ApolloServer, BaseContext } from '@apollo/server';
import { stringify } from 'csv-stringify';
import type { Request, RequestHandler, Response } from 'express';
import {
  Kind,
  parse,
  print,
  type ArgumentNode,
  type DocumentNode,
  type FieldNode,
  type GraphQLError,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Logger } from 'pino';
import { errorResponseBody, type ErrorCode } from '../../policy/errors.js';
import type { Principal } from '../../policy/principal.js';
import type { Refusal, Refuse } from '../request-stages/refusals.js';

/** The trailer that says how an export ended: `complete; rows=N`, or `truncated; rows=N; …`. */
export const EXPORT_STATUS_TRAILER = 'X-Export-Status';

export interface CsvExportOptions<Context extends BaseContext> {
  /** The gateway's Apollo Server, once it serves. */
  readonly apollo: () => ApolloServer<Context> | undefined;
  /** The context a GraphQL request of this HTTP request would get. */
  readonly context: (requestId: string, principal: Principal, authorization: string | undefined) => Context;
  /** The most rows one export may hold (env `EXPORT_MAX_ROWS`). */
  readonly maxRows: number;
  readonly log: Logger;
  /**
   * Admits each page before it is fetched: its estimated cost within the caller's budget and spent
   * from the caller's rate buckets (an export costs what its pages cost, not what its one document
   * looks like). A refusal of the first page is answered as any refusal; a later one ends the file
   * with a `#` line naming it.
   */
  readonly admitPage?: (req: Request, res: Response, page: { document: DocumentNode; variables: Record<string, unknown> }) => Promise<Refusal | null>;
  /** Answers a refusal of the first page. */
  readonly refuse?: Refuse;
}

const PAGE_SIZE = 500;
const FIRST = '__exportFirst';
const AFTER = '__exportAfter';
const PAGE = '__exportPage';

class NotTabular extends Error {}

class PageRefused extends Error {
  constructor(readonly refusal: Refusal) {
    super(`${refusal.code}: ${refusal.message}`);
  }
}

/** Column names of a `nodes` selection, nested objects flattened with `_`; fragments included. */
function columnsOf(selectionSet: SelectionSetNode, document: DocumentNode, prefix = ''): { path: string[]; name: string }[] {
  const columns: { path: string[]; name: string }[] = [];
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      const key = selection.alias?.value ?? selection.name.value;
      if (key === '__typename' && !prefix) continue;
      if (selection.selectionSet) {
        for (const nested of columnsOf(selection.selectionSet, document, `${prefix}${key}_`)) columns.push({ path: [key, ...nested.path], name: nested.name });
      } else columns.push({ path: [key], name: `${prefix}${key}` });
    } else {
      const set =
        selection.kind === Kind.INLINE_FRAGMENT
          ? selection.selectionSet
          : document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value)?.['selectionSet' as never];
      if (set) columns.push(...columnsOf(set as SelectionSetNode, document, prefix));
    }
  }
  const seen = new Set<string>();
  return columns.filter((column) => !seen.has(column.name) && seen.add(column.name));
}

/** The export's plan: the rewritten document (paged by the exporter) and the columns. */
export function planExport(query: string, operationName: string | undefined): { document: string; root: string; columns: { path: string[]; name: string }[] } {
  const document = parse(query);
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations.length === 1 ? operations[0] : undefined;
  if (!operation) throw new NotTabular(operationName ? `The document has no operation named "${operationName}".` : 'The document must hold one operation, or name one.');
  if (operation.operation !== 'query') throw new NotTabular('Only a query can be exported.');
  const roots = operation.selectionSet.selections.filter((s): s is FieldNode => s.kind === Kind.FIELD);
  if (roots.length !== 1 || operation.selectionSet.selections.length !== 1) throw new NotTabular('Export one list: the query must select exactly one root field.');
  const root = roots[0]!;
  const nodes = root.selectionSet?.selections.find((s): s is FieldNode => s.kind === Kind.FIELD && s.name.value === 'nodes' && !s.alias);
  if (!nodes?.selectionSet) throw new NotTabular(`${root.name.value} must be a connection, selected as ${root.name.value} { nodes { …columns } }.`);
  const columns = columnsOf(nodes.selectionSet, document);
  if (columns.length === 0) throw new NotTabular('Select at least one column under nodes.');

  const variable = (name: string) => ({ kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: name } }) as const;
  const argument = (name: string, value: string): ArgumentNode => ({ kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: name }, value: variable(value) });
  const pageInfo: FieldNode = {
    kind: Kind.FIELD,
    alias: { kind: Kind.NAME, value: PAGE },
    name: { kind: Kind.NAME, value: 'pageInfo' },
    selectionSet: { kind: Kind.SELECTION_SET, selections: ['hasNextPage', 'endCursor'].map((f) => ({ kind: Kind.FIELD, name: { kind: Kind.NAME, value: f } })) },
  };
  const pagedRoot: FieldNode = {
    ...root,
    arguments: [...(root.arguments ?? []).filter((a) => a.name.value !== 'first' && a.name.value !== 'after'), argument('first', FIRST), argument('after', AFTER)],
    selectionSet: { kind: Kind.SELECTION_SET, selections: [nodes, pageInfo] },
  };
  const pagedOperation: OperationDefinitionNode = {
    ...operation,
    variableDefinitions: [
      ...(operation.variableDefinitions ?? []),
      { kind: Kind.VARIABLE_DEFINITION, variable: variable(FIRST), type: { kind: Kind.NON_NULL_TYPE, type: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'Int' } } } },
      { kind: Kind.VARIABLE_DEFINITION, variable: variable(AFTER), type: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'String' } } },
    ],
    selectionSet: { kind: Kind.SELECTION_SET, selections: [pagedRoot] },
  };
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  return { document: print({ kind: Kind.DOCUMENT, definitions: [pagedOperation, ...fragments] }), root: root.alias?.value ?? root.name.value, columns };
}

const FORMULA = /^[=+\-@\t\r]/;

/** One CSV cell: numbers and booleans as they are, a text a spreadsheet would evaluate made inert. */
export function cellOf(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'object') throw new NotTabular('A selected column holds a list or an object: select its scalar fields, one row per node.');
  const text = String(value);
  return FORMULA.test(text) ? `'${text}` : text;
}

function rowOf(node: Record<string, unknown>, columns: readonly { path: string[] }[]): (string | number | boolean | null)[] {
  return columns.map(({ path }) => {
    let value: unknown = node;
    for (const [depth, key] of path.entries()) {
      if (Array.isArray(value)) throw new NotTabular(`${path.slice(0, depth).join('.')} is a list: an export has one row per node.`);
      value = value === null || value === undefined ? null : (value as Record<string, unknown>)[key];
    }
    if (Array.isArray(value)) throw new NotTabular(`${path.join('.')} is a list: an export has one row per node.`);
    return cellOf(value);
  });
}

function statusOf(errors: readonly { extensions?: Record<string, unknown> }[]): number {
  const codes = errors.map((e) => e.extensions?.code);
  if (codes.includes('UNAUTHENTICATED')) return 401;
  if (codes.includes('FORBIDDEN') || codes.includes('ARGUMENT_NOT_ALLOWED')) return 403;
  return 400;
}

export function useCsvExport<Context extends BaseContext>(options: CsvExportOptions<Context>): RequestHandler {
  return async (req, res) => {
    const requestId = res.locals.requestId as string;
    const fail = (status: number, code: ErrorCode, message: string) => res.status(status).json(errorResponseBody(code, message, requestId));
    const apollo = options.apollo();
    if (!apollo) {
      fail(503, 'GATEWAY_NOT_READY', 'The gateway is not ready.');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'POST') {
      res.setHeader('Allow', 'GET, POST');
      fail(405, 'METHOD_NOT_ALLOWED', `${req.method.slice(0, 10)} is not allowed here: export with GET or POST.`);
      return;
    }
    const get = req.method === 'GET';
    if (get && !req.headers['apollo-require-preflight'] && !req.headers['x-apollo-operation-name']) {
      fail(400, 'BAD_REQUEST', 'A GET export needs the header apollo-require-preflight (or x-apollo-operation-name): cross-site request forgery protection.');
      return;
    }
    const input = (get ? req.query : (req.body ?? {})) as Record<string, unknown>;
    let variables: Record<string, unknown> = {};
    try {
      const raw = input.variables;
      variables = typeof raw === 'string' ? (JSON.parse(raw) as Record<string, unknown>) : ((raw as Record<string, unknown> | undefined) ?? {});
      if (!variables || typeof variables !== 'object' || Array.isArray(variables)) throw new Error('not an object');
    } catch {
      fail(400, 'BAD_REQUEST', 'variables must be a JSON object.');
      return;
    }
    const limitRaw = input.limit;
    const limit = limitRaw === undefined || limitRaw === '' ? options.maxRows : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > options.maxRows) {
      fail(400, 'INVALID_ARGUMENT', `limit must be a whole number from 1 to ${options.maxRows}.`);
      return;
    }
    if (typeof input.query !== 'string' || input.query.length === 0) {
      fail(400, 'BAD_REQUEST', 'Send the query to export, e.g. {"query": "{ orders(filter: …) { nodes { id total } } }"}.');
      return;
    }
    let plan: ReturnType<typeof planExport>;
    try {
      plan = planExport(input.query, typeof input.operationName === 'string' ? input.operationName : undefined);
    } catch (error) {
      if (error instanceof NotTabular) fail(400, 'EXPORT_NOT_TABULAR', error.message);
      else fail(400, 'GRAPHQL_PARSE_FAILED', (error as GraphQLError).message);
      return;
    }

    const context = options.context(requestId, res.locals.principal as Principal, req.headers.authorization);
    // Parsed once, for admitting each page (its cost with that page's size).
    const pageDocument = options.admitPage ? parse(plan.document) : undefined;
    const page = async (after: string | null, first: number) => {
      const pageVariables = { ...variables, [FIRST]: first, [AFTER]: after };
      const refusal = pageDocument ? await options.admitPage!(req, res, { document: pageDocument, variables: pageVariables }) : null;
      if (refusal) throw new PageRefused(refusal);
      const response = await apollo.executeOperation({ query: plan.document, variables: pageVariables }, { contextValue: context });
      if (response.body.kind !== 'single') throw new Error('incremental responses are not exported');
      const result = response.body.singleResult;
      const connection = (result.data as Record<string, { nodes?: Record<string, unknown>[] | null; [PAGE]?: { hasNextPage: boolean; endCursor: string | null } } | null> | null | undefined)?.[plan.root];
      return { errors: result.errors ?? [], nodes: connection?.nodes ?? null, pageInfo: connection?.[PAGE] ?? null };
    };

    let written = 0;
    let current: Awaited<ReturnType<typeof page>>;
    try {
      current = await page(null, Math.min(PAGE_SIZE, limit));
    } catch (error) {
      if (!(error instanceof PageRefused) || !options.refuse) throw error;
      options.refuse(req, res, error.refusal);
      return;
    }
    if (current.errors.length > 0 || !current.nodes || !current.pageInfo) {
      // Nothing is streamed yet: refuse with the errors, as the same query would (a partial export is worse than none).
      const errors = current.errors.length > 0 ? current.errors : [{ message: 'The list is null.', extensions: { code: 'BAD_REQUEST' } }];
      res.status(statusOf(errors)).json({ errors: errors.map((e) => ({ ...e, extensions: { ...e.extensions, requestId } })) });
      return;
    }
    let firstRows: ReturnType<typeof rowOf>[];
    try {
      firstRows = current.nodes.map((node) => rowOf(node, plan.columns));
    } catch (error) {
      fail(400, 'EXPORT_NOT_TABULAR', (error as Error).message);
      return;
    }

    res.status(200).set({
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': 'attachment; filename="export.csv"',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      trailer: EXPORT_STATUS_TRAILER,
    });
    const csv = stringify({ header: true, columns: plan.columns.map((c) => c.name), cast: { boolean: (v) => (v ? 'true' : 'false') } });
    csv.pipe(res, { end: false });
    const finish = async (status: string) => {
      csv.end();
      await new Promise((resolve) => csv.once('end', resolve));
      res.addTrailers({ [EXPORT_STATUS_TRAILER]: status });
      res.end();
    };
    const write = async (row: unknown[]) => {
      if (!csv.write(row)) await new Promise((resolve) => csv.once('drain', resolve));
    };
    try {
      for (;;) {
        for (const row of firstRows) {
          await write(row);
          written++;
        }
        if (!current.pageInfo!.hasNextPage) break;
        if (written >= limit) {
          await finish(`truncated; rows=${written}; more rows match: narrow the query (filters, from/to), or raise limit up to ${options.maxRows}`);
          return;
        }
        current = await page(current.pageInfo!.endCursor, Math.min(PAGE_SIZE, limit - written));
        if (current.errors.length > 0 || !current.nodes || !current.pageInfo) {
          const code = String(current.errors[0]?.extensions?.code ?? 'INTERNAL_SERVER_ERROR');
          throw new Error(`${code}: ${current.errors[0]?.message ?? 'the list is null'}`);
        }
        firstRows = current.nodes.map((node) => rowOf(node, plan.columns));
      }
      await finish(`complete; rows=${written}`);
    } catch (error) {
      options.log.warn({ err: error, requestId, rows: written }, 'a CSV export failed while streaming; the transfer is aborted');
      // The rows sent so far reach the client, then no last chunk: it sees the transfer cut, never a
      // short file that looks whole.
      csv.end();
      await new Promise((resolve) => csv.once('end', resolve));
      await new Promise<void>((resolve) => res.write('', () => resolve()));
      res.destroy();
    }
  };
}

