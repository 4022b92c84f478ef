/**
 * How the gateway refuses an operation before planning (a limit, the cost budget, the rate limit,
 * load shedding): one answer shape (GraphQL-style JSON with a catalogued code and its HTTP status),
 * one audit record (`outcome: refused`), one metric (`mesh_operations_refused_total{code}`) and a
 * log line, whichever part refused.
 */
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { hashOf, type AuditSink } from '../policy/audit.js';
import { MAX_CLIENT_NAME } from '../policy/audit-plugins.js';
import { ERRORS, errorResponseBody, type ErrorCode } from '../policy/errors.js';
import type { Metrics } from '../policy/metrics.js';
import { requestedOperation } from './operation-limits.js';
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

export function createRefusals(options: { readonly sink: AuditSink | undefined; readonly metrics: Metrics; readonly log: Logger }): Refuse {
  const { sink, metrics, log } = options;
  return (req, res, { code, message, extensions = {}, headers = {} }) => {
    const requestId = res.locals.requestId;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.status(ERRORS[code].httpStatus).json(errorResponseBody(code, message, requestId, extensions));
    metrics.refusals.inc({ code });
    log.warn({ requestId, code, ...extensions }, 'operation refused before planning');
    if (!sink) return;
    const principal = res.locals.principal;
    const { query, operationName, variables } = requestedOperation(req);
    sink
      .append({
        kind: 'gateway-operation',
        service: 'gateway',
        requestId: requestId ?? '',
        at: new Date().toISOString(),
        subject: principal?.subject ?? null,
        roles: principal?.roles ?? [],
        purpose: principal?.purpose ?? null,
        clientName: req.get('apollographql-client-name')?.slice(0, MAX_CLIENT_NAME) ?? null,
        // Client-chosen: clipped, so that no request can bloat the audit log.
        operationName: typeof operationName === 'string' ? operationName.slice(0, MAX_CLIENT_NAME) : null,
        documentHash: hashOf(typeof query === 'string' ? query : null),
        variablesHash: hashOf(variables ?? null),
        outcome: 'refused',
        refusal: code,
        durationMs: 0,
      })
      .catch((error: unknown) => log.error({ requestId, err: error, pending: sink.pending }, 'audit record not written yet'));
  };
}
