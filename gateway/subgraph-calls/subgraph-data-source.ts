/**
 * How the gateway calls a subgraph: forwards the request id and the caller's token, sends through
 * the resilient caller (timeout, retry on reset, circuit breaker, response budget; see
 * subgraph-calls.ts), counts the rows each subgraph returned (the operation's actual cost), and turns
 * a failed call into a coded error that names the subgraph but never its URL, status text or
 * response body (those go to the log, under the request id).
 *
 * A subgraph that refuses the request itself (HTTP 4xx with a GraphQL error from the catalogue, as
 * when a custom scalar such as LocalDate rejects a value the gateway cannot check) keeps its code and
 * message: that error was raised on purpose for the client.
 */
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse as GraphQLResponse } from '@apollo/server-gateway-interface';
import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import { STRICT_AUDIT_EXTENSION } from '../../policy/audit-plugins.js';
import { isDeliberateError } from '../../policy/error-masking.js';
import { codedError, isErrorCode } from '../../policy/errors.js';
import type { Metrics } from '../../policy/metrics.js';
import { REQUEST_ID_HEADER, type RequestIdContext } from '../../policy/request-id.js';
import { SIGNATURE_HEADER, signSubgraphRequest } from '../../policy/subgraph-signature.js';
import type { ResponseBudget, SubgraphCaller } from './subgraph-calls.js';

export interface SubgraphDataSourceOptions {
  readonly name: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Calls the subgraph's URL (timeouts, retry, circuit, response budget: subgraph-calls.ts). */
  readonly caller: SubgraphCaller;
  /**
   * The key every request to the subgraph is signed with (see policy/subgraph-signature.ts); null
   * sends them unsigned, for benchmarks that measure the signature's cost (no configuration does).
   */
  readonly signingKey: string | null;
}

export type GatewayRequestContext = Partial<RequestIdContext> & {
  readonly authorization?: string | undefined;
  /** What the subgraphs may still answer to this operation, in bytes. */
  readonly responseBudget?: ResponseBudget;
  /** The caller's client, for the actual-cost metric. */
  readonly clientName?: string | null;
  /** Rows the subgraphs returned to this operation (its actual cost). */
  readonly actualRows?: { rows: number };
  /** The data products (and versions) the subgraphs say the answer was computed from, by id (asked for by the caller, or by the response cache). */
  readonly dataProductsRead?: Map<string, DataProductVersion>;
  /** The caller asked for `extensions.dataProducts`. */
  readonly showDataProducts?: boolean;
  /** Set when a subgraph's answer held strictly audited values (its record is written per read): never cached. */
  readonly strictlyAudited?: { read: boolean };
};

/** The request header that asks for `extensions.dataProducts` (the gateway passes it on to the subgraphs). */
export const INCLUDE_DATA_PRODUCTS_HEADER = 'x-include-data-products';

/** One data product an answer was computed from: its id, contract version and load time. */
export interface DataProductVersion {
  readonly id: string;
  readonly version: string | null;
  readonly loadedAt: string | null;
}

/**
 * The `extensions.dataProducts` a subgraph answered with: well-formed entries of its own products
 * only (`<subgraph>.<name>`), so that no subgraph can vouch for another domain's data.
 */
export function productVersionsOf(subgraph: string, extensions: unknown): DataProductVersion[] {
  const listed = (extensions as { dataProducts?: unknown } | undefined)?.dataProducts;
  if (!Array.isArray(listed)) return [];
  return listed.flatMap((entry: { id?: unknown; version?: unknown; loadedAt?: unknown }) =>
    typeof entry?.id === 'string' && entry.id.startsWith(`${subgraph}.`)
      ? [{ id: entry.id, version: typeof entry.version === 'string' ? entry.version : null, loadedAt: typeof entry.loadedAt === 'string' ? entry.loadedAt : null }]
      : [],
  );
}

/**
 * Adds `extensions.dataProducts` to a response, when the request asks (`x-include-data-products:
 * true`): every product (id, version, load time) the subgraphs computed it from, so that an analyst
 * can tell whether two answers came from the same data.
 */
export function useDataProductVersions(): ApolloServerPlugin<GatewayRequestContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, response }) {
          const read = contextValue.dataProductsRead;
          if (!contextValue.showDataProducts || !read || read.size === 0 || response.body.kind !== 'single') return;
          response.body.singleResult.extensions = {
            ...response.body.singleResult.extensions,
            dataProducts: [...read.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
          };
        },
      };
    },
  };
}

/** Marks an error that the subgraph raised on purpose, to pass on as it is. */
class SubgraphRefusal extends GraphQLError {}

/**
 * A subgraph that cannot parse or validate what the gateway planned from the supergraph is not
 * serving the schema it was composed from (deployed without being published, or rolled back). The
 * caller's document fitted the published schema, so this is the platform's fault, not the caller's:
 * it gets a code of its own, and the subgraph's message (which names fields) stays in the log.
 */
const PLAN_REFUSALS = new Set(['GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_PARSE_FAILED']);
/**
 * Except a refused value: a literal that a custom scalar the gateway cannot check (no known
 * `@specifiedBy`, see input-scalars.ts) does not accept is the caller's input, refused as such.
 */
const VALUE_REFUSAL = /\bvalue\b/i;
/** An enum value the supergraph has and the subgraph lacks: drift again, not the caller's input. */
const ENUM_DRIFT = /does not exist in "[^"]+" enum/;
/** Codes of the caller's input refused by a subgraph: the response is a 400, as at the gateway. */
const INPUT_REFUSALS = new Set(['GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT']);

/** Answers 400 when a subgraph refused the caller's input (a value of a scalar only it can check). */
export function useSubgraphInputStatus(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const refused = response.body.singleResult.errors?.some((error) => error.extensions?.serviceName && INPUT_REFUSALS.has(String(error.extensions.code)));
          if (refused) response.http.status = 400;
        },
      };
    },
  };
}

/** Objects inside lists: the rows (entities, connection nodes, list items) an answer holds. */
export function countRows(value: unknown, inList = false): number {
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + countRows(item, true), 0);
  if (value === null || typeof value !== 'object') return 0;
  let rows = inList ? 1 : 0;
  for (const child of Object.values(value)) if (child !== null && typeof child === 'object') rows += countRows(child);
  return rows;
}

/** A subgraph's HTTP answer, as the error paths read it. */
interface Answered {
  readonly status: number;
  readonly body: unknown;
}

/** A successful status (the range fetch calls `ok`). */
const isOk = (status: number) => status >= 200 && status < 300;

/** The content types a GraphQL answer comes in. */
const isJson = (contentType: string | undefined) => contentType !== undefined && (contentType.startsWith('application/json') || contentType.startsWith('application/graphql-response+json'));

/**
 * A subgraph, as the gateway's query plan calls it. It speaks to the subgraph itself, through the
 * resilient caller, instead of through Apollo's RemoteGraphQLDataSource: the body is serialised once
 * and signed as sent, and the answer's text is parsed once (no fetch Request, Response or Headers
 * objects per call, no asynchronous context for what the call already knows).
 */
export class SubgraphDataSource implements GraphQLDataSource<GatewayRequestContext> {
  readonly #name: string;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #caller: SubgraphCaller;
  readonly #signingKey: string | null;

  constructor({ name, log, metrics, caller, signingKey }: SubgraphDataSourceOptions) {
    this.#name = name;
    this.#log = log;
    this.#metrics = metrics;
    this.#caller = caller;
    this.#signingKey = signingKey;
  }

  async process(options: GraphQLDataSourceProcessOptions<GatewayRequestContext>): Promise<GraphQLResponse> {
    const started = performance.now();
    const observe = (outcome: string) =>
      this.#metrics.subgraphFetchSeconds.observe({ subgraph: this.#name, outcome }, (performance.now() - started) / 1000);
    const { request, context } = options;
    if (!request.query) throw new Error('Missing query');
    const { http, ...operation } = request;
    const body = JSON.stringify(operation);
    const headers: Record<string, string> = {};
    for (const [name, value] of http?.headers ?? []) headers[name] = value;
    headers['content-type'] = 'application/json';
    if (context.requestId) headers[REQUEST_ID_HEADER] = context.requestId;
    // Zero trust: each subgraph verifies the caller's token itself, and answers only requests the gateway signed (body and token).
    if (context.authorization) headers.authorization = context.authorization;
    // Asked for the answer's provenance: each subgraph says which of its products it read.
    if (context.dataProductsRead) headers[INCLUDE_DATA_PRODUCTS_HEADER] = 'true';
    if (this.#signingKey !== null) headers[SIGNATURE_HEADER] = signSubgraphRequest({ key: this.#signingKey, body, authorization: context.authorization });
    let answered: Answered | undefined;
    try {
      // A mutation may have taken effect before its connection died: only queries are sent again.
      const answer = await this.#caller.call({ body, headers, retryable: !/^\s*mutation\b/.test(request.query), budget: context.responseBudget });
      const parsed: unknown = isJson(answer.contentType) ? JSON.parse(answer.text) : answer.text;
      answered = { status: answer.status, body: parsed };
      if (!isOk(answer.status)) throw this.#errorFromAnswer(answered);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`Expected JSON response body, but received: ${String(parsed).slice(0, 200)}`);
      const response = parsed as GraphQLResponse;
      observe(response.errors?.length ? 'errors' : 'ok');
      const rows = countRows(response.data);
      this.#metrics.subgraphRows.inc({ subgraph: this.#name, client: this.#metrics.clientLabel(context.clientName) }, rows);
      if (context.actualRows) context.actualRows.rows += rows;
      for (const product of productVersionsOf(this.#name, response.extensions)) context.dataProductsRead?.set(product.id, product);
      if (response.extensions?.[STRICT_AUDIT_EXTENSION] === true && context.strictlyAudited) context.strictlyAudited.read = true;
      return response;
    } catch (error) {
      observe('failed');
      throw this.#coded(error as Error, answered, context);
    }
  }

  /** The error a non-2xx answer stands for. */
  #errorFromAnswer(answered: Answered): GraphQLError {
    const first = (answered.body as { errors?: { message?: unknown; extensions?: { code?: unknown } }[] } | null)?.errors?.[0];
    if (typeof first?.message === 'string' && typeof first.extensions?.code === 'string' && PLAN_REFUSALS.has(first.extensions.code) && (!VALUE_REFUSAL.test(first.message) || ENUM_DRIFT.test(first.message))) {
      this.#log.error({ subgraph: this.#name, status: answered.status, subgraphError: first.message }, 'subgraph refused the planned operation: it serves a schema other than the supergraph\'s');
      return new SubgraphRefusal(
        `The ${this.#name} subgraph is not serving the schema the mesh was composed from, and could not answer this part; the platform team has been told (publish or roll back the subgraph).`,
        { extensions: { code: 'SUBGRAPH_SCHEMA_MISMATCH', serviceName: this.#name } },
      );
    }
    if (answered.status >= 400 && answered.status < 500 && typeof first?.message === 'string' && isErrorCode(first.extensions?.code)) {
      return new SubgraphRefusal(first.message, { extensions: { code: first.extensions.code, serviceName: this.#name } });
    }
    return new GraphQLError(`HTTP ${answered.status}`, { extensions: { status: answered.status, body: answered.body } });
  }

  /** What the caller gets of a failed call: a coded error naming the subgraph, never its URL, status text or body (those are logged). */
  #coded(error: Error, answered: Answered | undefined, context: GatewayRequestContext): Error {
    if (error instanceof SubgraphRefusal) return error;
    this.#log.error({ subgraph: this.#name, requestId: context.requestId, status: answered?.status, err: error }, 'subgraph fetch failed');
    const extensions = { serviceName: this.#name };
    // Timeouts, an open circuit and the response budget are coded by the caller already.
    if (isDeliberateError(error)) {
      const { message, extensions: own } = error as GraphQLError;
      return codedError(own.code!, message, { ...own, ...extensions });
    }
    return answered
      ? codedError('SUBGRAPH_BAD_RESPONSE', `The ${this.#name} subgraph answered with an error (HTTP ${answered.status}).`, extensions)
      : codedError('SUBGRAPH_UNAVAILABLE', `The ${this.#name} subgraph could not be reached.`, extensions);
  }
}
