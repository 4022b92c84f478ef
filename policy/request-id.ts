/**
 * The request id: one per client request, shared by the gateway's and the subgraphs' log lines,
 * error extensions and (later) audit records.
 */
import { randomUUID } from 'node:crypto';

/** The header that carries it, from clients to the gateway and from the gateway to subgraphs. */
export const REQUEST_ID_HEADER = 'x-request-id';

// Short and plain, so that a caller-chosen id can never forge log lines or bloat records.
const ACCEPTED = /^[A-Za-z0-9._:-]{8,128}$/;

/** The caller's id when it is well formed (a single header of 8-128 safe characters), else a new one. */
export function readRequestId(header: string | string[] | undefined): string {
  return typeof header === 'string' && ACCEPTED.test(header) ? header : randomUUID();
}

/** The part of a request context every server has. */
export interface RequestIdContext {
  readonly requestId: string;
}
