/**
 * How the gateway refuses an operation before planning (a limit, the cost budget, the rate limit,
 * load shedding): one answer shape (GraphQL-style JSON with a catalogued code and its HTTP status),
 * one audit record (`outcome: refused`), one metric (`mesh_operations_refused_total{code}`) and a
 * log line, whichever part refused.
 */
import type { Request, Response } from 'express';
import type { TokenRejectedError } from '../../policy/identity.js';
import type { Logger } from 'pino';
import { boundedName, hashOf, type AuditSink, type GatewayAuditRecord } from '../../policy/audit.js';
import { ERRORS, errorResponseBody, type ErrorCode } from '../../policy/errors.js';
import type { Metrics } from '../../policy/metrics.js';
import type { Principal } from '../../policy/principal.js';
import { requestedOperation } from './requested-operation.js';
import './request-state.js';

export interface Refusal {
  readonly code: ErrorCode;
  readonly message: string;
  /** Added to the error's `extensions` (the limit and the measured value, the budget, …). */
  readonly extensions?: Record<string, unknown>;
  /** Response headers (`Retry-After`). */
  readonly headers?: Record<string, string>;
}

/** Answers a refusal and records it. */
export type Refuse = (req: Request, res: Response, refusal: Refusal) => void;

/** What a refused request was, as far as it is known. */
export interface RefusedRequest {
  readonly principal: Principal | undefined;
  readonly requestId: string;
  readonly clientName: string | undefined;
  readonly operation: { readonly query?: unknown; readonly operationName?: unknown; readonly variables?: unknown };
}

/** The audit record of a refusal: who asked (as far as known), what, and the refusal's code. */
export function refusalRecord(request: RefusedRequest, refusal: { readonly code: ErrorCode; readonly reason?: string; readonly suppressed?: number }): GatewayAuditRecord {
  const { principal } = request;
  const { query, operationName, variables } = request.operation;
  return {
    kind: 'gateway-operation',
    service: 'gateway',
    requestId: request.requestId,
    at: new Date().toISOString(),
    subject: boundedName(principal?.subject),
    roles: (principal?.roles ?? []).map((role) => boundedName(role)!),
    purpose: boundedName(principal?.purpose),
    // Client-chosen: bounded, so that no request can bloat the audit log.
    clientName: boundedName(request.clientName),
    operationName: typeof operationName === 'string' ? boundedName(operationName) : null,
    documentHash: hashOf(typeof query === 'string' ? query : null),
    variablesHash: hashOf(variables ?? null),
    outcome: 'refused',
    refusal: refusal.code,
    ...(refusal.reason ? { reason: refusal.reason } : {}),
    ...(refusal.suppressed ? { suppressed: refusal.suppressed } : {}),
    durationMs: 0,
  };
}

/** An HTTP request, as its refusal's record tells it. */
export const refusedHttp = (req: Request, res: Response): RefusedRequest => ({
  principal: res.locals.principal,
  requestId: res.locals.requestId ?? '',
  clientName: req.get('apollographql-client-name'),
  operation: requestedOperation(req),
});

export function appendRecord(sink: AuditSink, log: Logger, record: GatewayAuditRecord): void {
  sink.append(record).catch((error: unknown) => log.error({ requestId: record.requestId, err: error, pending: sink.pending }, 'audit record not written yet'));
}

/** Refused tokens recorded one by one, per second at most; the rest are counted into the next record. */
const TOKEN_REJECTIONS_PER_SECOND = 20;

/**
 * Records each refused token (HTTP 401) in the audit trail, as a refusal with its reason: at most 20
 * a second, so that a flood of junk tokens cannot flood the log; the ones over are counted, and the
 * next record says how many (`suppressed`). Every one is counted in `mesh_token_rejections_total`.
 */
export function createTokenRejectionAudit(options: { readonly sink: AuditSink | undefined; readonly metrics: Metrics; readonly log: Logger }) {
  const { sink, metrics, log } = options;
  let windowStart = 0;
  let inWindow = 0;
  let suppressed = 0;
  const record = (request: RefusedRequest, error: TokenRejectedError): void => {
    metrics.tokenRejections.inc({ reason: error.reason });
    if (!sink) return;
    const now = Date.now();
    if (now - windowStart >= 1_000) {
      windowStart = now;
      inWindow = 0;
    }
    if (inWindow >= TOKEN_REJECTIONS_PER_SECOND) {
      suppressed += 1;
      return;
    }
    inWindow += 1;
    appendRecord(sink, log, refusalRecord(request, { code: 'UNAUTHENTICATED', reason: error.reason, suppressed }));
    suppressed = 0;
  };
  /** For HTTP routes (policy/http.ts's `authenticate`), and for other ways in (a WebSocket's token). */
  return Object.assign((req: Request, res: Response, error: TokenRejectedError) => record(refusedHttp(req, res), error), { record });
}

export function createRefusals(options: { readonly sink: AuditSink | undefined; readonly metrics: Metrics; readonly log: Logger }): Refuse {
  const { sink, metrics, log } = options;
  return (req, res, { code, message, extensions = {}, headers = {} }) => {
    const requestId = res.locals.requestId;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.status(ERRORS[code].httpStatus).json(errorResponseBody(code, message, requestId, extensions));
    metrics.refusals.inc({ code });
    log.warn({ requestId, code, ...extensions }, 'operation refused before planning');
    if (sink) appendRecord(sink, log, refusalRecord(refusedHttp(req, res), { code }));
  };
}
