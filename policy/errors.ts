/**
 * The platform's one error-code catalogue.
 *
 * Every error a client can see carries one of these codes in `extensions.code`. The gateway and the
 * subgraphs both report from here (`policy/` is the one folder both may import), and policy/README.md's
 * error table is generated from this object (`npm run docs:errors`), never retyped.
 *
 * Codes that Apollo Server itself emits are listed too, so that the table is the complete contract.
 */
import { GraphQLError } from 'graphql';

export interface ErrorSpec {
  /** One line for the README: what happened and what the caller should do. */
  readonly description: string;
  /** The HTTP status of a response whose only error is this one (GraphQL over HTTP). */
  readonly httpStatus: number;
  /** Who defines the code: Apollo Server, or this platform (which may raise Apollo's codes too). */
  readonly definedBy: 'apollo' | 'platform';
}

export const ERRORS = {
  GRAPHQL_PARSE_FAILED: {
    description: 'The document is not valid GraphQL syntax; the message gives the line and column.',
    httpStatus: 400,
    definedBy: 'apollo',
  },
  GRAPHQL_VALIDATION_FAILED: {
    description:
      'The document does not fit the schema (unknown field, argument or enum value, wrong type).',
    httpStatus: 400,
    definedBy: 'apollo',
  },
  BAD_USER_INPUT: {
    description: 'A variable value cannot be coerced to its declared type (for example an unknown enum value).',
    httpStatus: 400,
    definedBy: 'apollo',
  },
  BAD_REQUEST: {
    description: 'The HTTP request is malformed (no query, unreadable JSON body, wrong method or content type).',
    httpStatus: 400,
    definedBy: 'apollo',
  },
  REQUEST_TOO_LARGE: {
    description: 'The request body is larger than the server accepts (1 MB by default).',
    httpStatus: 413,
    definedBy: 'platform',
  },
  OPERATION_RESOLUTION_FAILURE: {
    description: 'The document holds several operations and `operationName` does not name one of them.',
    httpStatus: 400,
    definedBy: 'apollo',
  },
  UNAUTHENTICATED: {
    description:
      'No valid token: the token was refused (HTTP 401, `extensions.reason` says why), or a field needs a signed-in principal.',
    httpStatus: 401,
    definedBy: 'platform',
  },
  SIGNATURE_REQUIRED: {
    description:
      'A subgraph was called without a valid gateway signature (none, malformed, too old, or not matching the body and token; `extensions.reason` says which): subgraphs answer the gateway, query the gateway.',
    httpStatus: 401,
    definedBy: 'platform',
  },
  FORBIDDEN: {
    description:
      'The principal may not read this field: `extensions.missing` lists the roles, scopes or purpose it lacks, `extensions.rule` the rule.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  ARGUMENT_NOT_ALLOWED: {
    description:
      'An argument filters or orders by a field this principal sees masked or cannot read (the results would reveal it).',
    httpStatus: 200,
    definedBy: 'platform',
  },
  AUDIT_UNAVAILABLE: {
    description:
      'A strictly audited value (RESTRICTED by default) is withheld because its audit record could not be written (fail closed); retry later.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  PAGE_SIZE_OUT_OF_RANGE: {
    description: 'A connection argument `first` is below 0 or above the documented maximum of its field.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  INVALID_CURSOR: {
    description:
      'An `after` cursor is malformed, or was issued by a list with another ordering; restart from the first page.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  INVALID_ARGUMENT: {
    description: 'An argument value is well-typed but not acceptable (for example an empty search text).',
    httpStatus: 200,
    definedBy: 'platform',
  },
  DOWNSTREAM_SERVICE_ERROR: {
    description:
      'A subgraph returned an error without a code (only subgraphs outside this platform do); the message is theirs.',
    httpStatus: 200,
    definedBy: 'apollo',
  },
  WAREHOUSE_UNAVAILABLE: {
    description:
      'The warehouse of the subgraph named in `extensions.serviceName` is down or unreachable; the subgraph reconnects by itself, retry shortly.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  WAREHOUSE_TIMEOUT: {
    description: 'A warehouse query ran past its statement timeout and was cancelled; retry, or ask for less.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  SUBGRAPH_UNAVAILABLE: {
    description:
      'The gateway could not reach the subgraph named in `extensions.serviceName`; the other parts of the answer are still served.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  SUBGRAPH_BAD_RESPONSE: {
    description:
      'The subgraph named in `extensions.serviceName` answered with an HTTP error or a body that is not a GraphQL response.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  SUBGRAPH_SCHEMA_MISMATCH: {
    description:
      'The subgraph named in `extensions.serviceName` refused the operation the gateway planned: it serves a schema other than the one the supergraph was composed from (deployed unpublished). The platform\'s fault, not the document\'s; the other parts of the answer are still served.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  TRUSTED_DOCUMENT_REQUIRED: {
    description:
      'The token was issued to an app registered for trusted documents: it may send only the `documentId` (hash) of an operation in its registered manifest, never a query text.',
    httpStatus: 400,
    definedBy: 'platform',
  },
  PERSISTED_DOCUMENT_NOT_FOUND: {
    description:
      'The `documentId` (or `extensions.persistedQuery.sha256Hash`) names no registered document of this client; register the app\'s manifest with `npm run registry -- clients register`.',
    httpStatus: 400,
    definedBy: 'platform',
  },
  EXPORT_NOT_TABULAR: {
    description:
      'A CSV export needs a query with one root connection selecting `nodes { …columns }`, without lists inside a row; the message says what to change.',
    httpStatus: 400,
    definedBy: 'platform',
  },
  MAX_TOKENS_EXCEEDED: {
    description:
      'The document has more lexical tokens than this caller may send (2000 by default); parsing stopped there. `extensions.limit` is the limit.',
    httpStatus: 400,
    definedBy: 'platform',
  },
  MAX_DEPTH_EXCEEDED: {
    description:
      'Fields are nested deeper than this caller may ask (15 by default, fragments flattened, introspection excepted), or the variables are; `extensions.value` and `extensions.limit` say by how much.',
    httpStatus: 400,
    definedBy: 'platform',
  },
  MAX_ALIASES_EXCEEDED: {
    description: 'The operation uses more aliases than this caller may (30 by default, fragments included).',
    httpStatus: 400,
    definedBy: 'platform',
  },
  MAX_ROOT_FIELDS_EXCEEDED: {
    description: 'The operation asks for more root fields than this caller may (15 by default); split it.',
    httpStatus: 400,
    definedBy: 'platform',
  },
  MAX_DIRECTIVES_EXCEEDED: {
    description: 'The operation carries more directives than this caller may (50 by default, fragments included).',
    httpStatus: 400,
    definedBy: 'platform',
  },
  MAX_FRAGMENTS_EXCEEDED: {
    description: 'The document defines more fragments than this caller may (30 by default).',
    httpStatus: 400,
    definedBy: 'platform',
  },
  COST_LIMIT_EXCEEDED: {
    description:
      'The estimated cost of the operation (from the `@cost` and `@listSize` directives) is over this caller\'s budget; `extensions.cost` and `extensions.budget` give both. Ask for smaller pages or fewer fields.',
    httpStatus: 400,
    definedBy: 'platform',
  },
  RATE_LIMITED: {
    description:
      'This subject or client spent its cost units for the current window; retry after the seconds in the `Retry-After` header (`extensions.retryAfterSeconds`).',
    httpStatus: 429,
    definedBy: 'platform',
  },
  GATEWAY_OVERLOADED: {
    description:
      'The gateway is at its bound of operations in flight or of heap; operations in flight finish, new ones are refused at once. Retry after `Retry-After` seconds.',
    httpStatus: 503,
    definedBy: 'platform',
  },
  RESPONSE_TOO_LARGE: {
    description:
      'The subgraphs\' answers to this operation passed the size the gateway assembles (20 MB by default); the rest was not fetched. Ask for smaller pages.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  SUBGRAPH_TIMEOUT: {
    description:
      'The subgraph named in `extensions.serviceName` did not answer within its fetch timeout; its fields are null, the rest of the answer is served.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  HOST_NOT_ALLOWED: {
    description:
      'The request\'s `Host` (or `Origin`) is not an allowed name of this server: DNS rebinding protection. Use `localhost`, or add the name to `ALLOWED_HOSTS`.',
    httpStatus: 403,
    definedBy: 'platform',
  },
  GATEWAY_NOT_READY: {
    description: 'The gateway has no supergraph to serve yet (still starting, or nothing published to the registry); retry after `/health/ready` answers 200.',
    httpStatus: 503,
    definedBy: 'platform',
  },
  METHOD_NOT_ALLOWED: {
    description: 'The route does not take this HTTP method; the `Allow` header lists those it takes.',
    httpStatus: 405,
    definedBy: 'platform',
  },
  NOT_FOUND: {
    description: 'No such HTTP route on this server.',
    httpStatus: 404,
    definedBy: 'platform',
  },
  EVENTS_UNAVAILABLE: {
    description: 'The change feed cannot be reached or written (the NATS server is down, or the event log locked); a publisher keeps the event and publishes it again.',
    httpStatus: 503,
    definedBy: 'platform',
  },
  INPUT_UNREACHABLE: {
    description: "A domain could not reach the gateway to read a product it is fed by (an input: the gateway is starting, or GATEWAY_URL is wrong); it tries again, and the product's freshness says so.",
    httpStatus: 503,
    definedBy: 'platform',
  },
  INPUT_FAILED: {
    description: "A domain could not read or merge a product it is fed by for a reason of its own (not the gateway's code); it tries again, and the product's freshness says so.",
    httpStatus: 503,
    definedBy: 'platform',
  },
  EVENT_POSITION_INVALID: {
    description: 'A resume position is not one the product\'s change feed ever had (not a whole number from 0, or beyond its last event).',
    httpStatus: 400,
    definedBy: 'platform',
  },
  EVENT_POSITION_EXPIRED: {
    description: 'The change feed no longer keeps the events after the resume position (its retention removed them): read the product again, then follow from its last position.',
    httpStatus: 410,
    definedBy: 'platform',
  },
  EVENT_INVALID: {
    description: 'A change event or product name is malformed (a product is `<domain>.<product>`; an event carries 1 to 500 keys and its changed fields, never a value).',
    httpStatus: 400,
    definedBy: 'platform',
  },
  SUBSCRIPTION_INVALID: {
    description: 'The gateway cannot serve this as a subscription: not a subscription operation (queries go to POST /graphql), a subscription field without a change feed it can follow, or a name of its own (`$meshEventKey`, the alias `meshEventRow`).',
    httpStatus: 400,
    definedBy: 'platform',
  },
  SUBSCRIPTION_LIMIT: {
    description: 'The subject (or the client) has as many subscriptions open as its limits allow (`maxSubscriptions`, `maxClientSubscriptions`): end one first.',
    httpStatus: 429,
    definedBy: 'platform',
  },
  SUBSCRIPTION_SLOW_CONSUMER: {
    description: 'The subscription ended because its subscriber read too slowly (events waiting, or bytes unsent, past the bound): subscribe again `after` the last position received.',
    httpStatus: 200,
    definedBy: 'platform',
  },
  SUBSCRIPTION_TOKEN_EXPIRED: {
    description: 'The subscription ended because its token expired: subscribe again with a new token, `after` the last position received.',
    httpStatus: 401,
    definedBy: 'platform',
  },
  INTERNAL_SERVER_ERROR: {
    description:
      'An unexpected failure; the message is generic on purpose, the full error is in the server log under the same `requestId`.',
    httpStatus: 200,
    definedBy: 'platform',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

declare module 'graphql' {
  interface GraphQLErrorExtensions {
    /** A code from the catalogue in `policy/errors.ts`. */
    code?: ErrorCode;
    /** The subgraph an error came from, added by the gateway. */
    serviceName?: string;
    /** The id shared by the gateway's and the subgraphs' log lines for one request. */
    requestId?: string;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}

/** An error created on purpose: its message and extensions reach the client as they are. */
export function codedError(
  code: ErrorCode,
  message: string,
  extensions: Record<string, unknown> = {},
): GraphQLError {
  return new GraphQLError(message, { extensions: { ...extensions, code } });
}

/** The JSON body of an HTTP-level error response (no GraphQL execution took place). */
export function errorResponseBody(
  code: ErrorCode,
  message: string,
  requestId?: string,
  extensions: Record<string, unknown> = {},
) {
  return { errors: [{ message, extensions: { ...extensions, code, ...(requestId ? { requestId } : {}) } }] };
}

/** policy/README.md's error table, generated from the catalogue. */
export function renderErrorTable(): string {
  const rows = Object.entries(ERRORS).map(
    ([code, spec]) => `| \`${code}\` | ${spec.httpStatus} | ${spec.definedBy} | ${spec.description} |`,
  );
  return ['| code | HTTP | defined by | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
