/**
 * The operation a GraphQL request names, before Apollo Server reads it: what the operation limits
 * measure and what a refusal's audit record hashes.
 */
import type { Request } from 'express';

/** The query text and variables of a GraphQL request, by POST body or GET parameters. */
export function requestedOperation(req: Request): { query: unknown; operationName: unknown; variables: unknown } {
  if (req.method === 'GET') {
    const url = new URL(req.originalUrl, 'http://gateway');
    const variables = url.searchParams.get('variables');
    let parsed: unknown;
    try {
      parsed = variables ? JSON.parse(variables) : undefined;
    } catch {
      parsed = undefined;
    }
    return { query: url.searchParams.get('query') ?? undefined, operationName: url.searchParams.get('operationName') ?? undefined, variables: parsed };
  }
  const body = (req.body ?? {}) as Record<string, unknown>;
  // Variables sent as a JSON string (the CSV export takes them so) are measured as what they parse to.
  let variables = body.variables;
  if (typeof variables === 'string') {
    try {
      variables = JSON.parse(variables);
    } catch {
      // Not JSON: refused later, where the string is read.
    }
  }
  return { query: body.query, operationName: body.operationName, variables };
}
