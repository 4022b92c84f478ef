/**
 * What the gateway's HTTP middleware learns about a request and hands to the next one, typed
 * through Express's `Locals` (never `as` casts at each use).
 */
import type { DocumentNode, OperationDefinitionNode } from 'graphql';
import type { Principal } from '../../policy/principal.js';

/** The document the operation limits parsed (once), for the cost analysis after them. */
export interface ParsedOperation {
  readonly document: DocumentNode;
  readonly operation: OperationDefinitionNode;
  readonly variables: Readonly<Record<string, unknown>>;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      /** Set by `assignRequestId` on every request. */
      requestId?: string;
      /** Set by `authenticate`: the verified caller, or the anonymous principal. */
      principal?: Principal;
      /** Set by the operation limits when the document parsed within them. */
      parsedOperation?: ParsedOperation;
      /** Set by the cost analysis: the operation's estimated cost. */
      estimatedCost?: number;
    }
  }
}

export {};
