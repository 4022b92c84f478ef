/**
 * HTTP plumbing shared by the gateway and every subgraph, so that both answer in the same shape:
 * a request id on every response, and errors outside GraphQL execution (unknown route, malformed
 * or oversized body) as GraphQL-style JSON with a catalogued code, never an HTML page.
 */
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { errorResponseBody, type ErrorCode } from './errors.js';
import type { ErrorLog } from './error-masking.js';
import { TokenRejectedError, type TokenVerifier } from './identity.js';
import { REQUEST_ID_HEADER, readRequestId } from './request-id.js';

/** Reads or assigns the request id (`res.locals.requestId`) and echoes it in the response header. */
export const assignRequestId: RequestHandler = (req, res, next) => {
  const requestId = readRequestId(req.headers[REQUEST_ID_HEADER]);
  res.locals.requestId = requestId;
  res.setHeader(REQUEST_ID_HEADER, requestId);
  next();
};

/** Refuses any other HTTP method with 405, METHOD_NOT_ALLOWED and an `Allow` header. */
export function allowMethods(methods: readonly string[]): RequestHandler {
  return (req, res, next) => {
    if (methods.includes(req.method)) return next();
    res
      .status(405)
      .setHeader('Allow', methods.join(', '))
      .json(errorResponseBody('METHOD_NOT_ALLOWED', `${req.method.slice(0, 10)} is not allowed here; use ${methods.join(' or ')}.`, res.locals.requestId));
  };
}

export const notFound: RequestHandler = (req, res) => {
  res.status(404).json(errorResponseBody('NOT_FOUND', `No route ${req.method} ${req.path}.`, res.locals.requestId));
};

interface BodyParserError {
  type?: string;
  status?: number;
}

/** The last middleware: body-parser failures become 400/413, anything else a masked 500. */
export function httpErrorHandler(log: ErrorLog, service: string): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
    if (res.headersSent) return next(error);
    const { type } = (error ?? {}) as BodyParserError;
    let status = 500;
    let code: ErrorCode = 'INTERNAL_SERVER_ERROR';
    let message = 'Internal server error';
    if (type === 'entity.parse.failed') {
      [status, code, message] = [400, 'BAD_REQUEST', 'The request body is not valid JSON.'];
    } else if (type === 'entity.too.large') {
      [status, code, message] = [413, 'REQUEST_TOO_LARGE', 'The request body is larger than this server accepts.'];
    } else if (typeof type === 'string') {
      [status, code, message] = [400, 'BAD_REQUEST', 'The request body cannot be read.'];
    } else {
      log.error({ service, requestId: res.locals.requestId, err: error }, 'unexpected HTTP error');
    }
    res.status(status).json(errorResponseBody(code, message, res.locals.requestId));
  };
}

/**
 * Verifies the bearer token (`res.locals.principal`): anonymous without one (unless configured to
 * reject), and always 401 with a reason for a token that does not verify, never anonymous.
 */
export function authenticate(verifier: TokenVerifier, onRejected?: (req: Request, res: Response, error: TokenRejectedError) => void): RequestHandler {
  return async (req, res, next) => {
    try {
      res.locals.principal = await verifier.verify(req.headers.authorization);
      next();
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) return next(error);
      onRejected?.(req, res, error);
      res
        .status(401)
        .setHeader('WWW-Authenticate', `Bearer error="invalid_token", error_description="${error.reason}"`)
        .json(errorResponseBody('UNAUTHENTICATED', `Token refused: ${error.message}`, res.locals.requestId, { reason: error.reason }));
    }
  };
}
