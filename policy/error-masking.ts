/**
 * Only errors created on purpose reach clients. An error is deliberate when it is a GraphQLError
 * whose `extensions.code` is in the catalogue; anything else (a driver failure, a TypeError, a
 * library's uncoded error) becomes a generic INTERNAL_SERVER_ERROR, and its details go to the log
 * under the request id that the response carries too.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { isErrorCode } from './errors.js';
import type { RequestIdContext } from './request-id.js';

export interface ErrorLog {
  error(details: Record<string, unknown>, message: string): void;
}

export interface ErrorMaskingOptions {
  readonly log: ErrorLog;
  /** Named in log lines: `gateway` or the subgraph's name. */
  readonly service: string;
  /**
   * Turns a known kind of unexpected failure (a warehouse that is down) into a coded error for
   * clients, instead of the generic one; its details still go to the log only.
   */
  readonly classify?: (error: unknown) => GraphQLError | null;
}

export const MASKED_MESSAGE = 'Internal server error';

export function isDeliberateError(error: unknown): boolean {
  return error instanceof GraphQLError && isErrorCode(error.extensions.code);
}

export interface ErrorMasking {
  /** For Apollo Server's `formatError`. */
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
  /** Logs masked errors with their request id and adds `requestId` to every error sent. */
  plugin: ApolloServerPlugin<RequestIdContext>;
}

export function useErrorMasking({ log, service, classify }: ErrorMaskingOptions): ErrorMasking {
  return {
    formatError(formatted, error) {
      if (isDeliberateError(error)) return formatted;
      const known = classify?.(error instanceof GraphQLError ? (error.originalError ?? error) : error);
      if (known) {
        return {
          message: known.message,
          ...(formatted.locations ? { locations: formatted.locations } : {}),
          ...(formatted.path ? { path: formatted.path } : {}),
          extensions: { ...known.extensions },
        };
      }
      return {
        message: MASKED_MESSAGE,
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      };
    },
    plugin: {
      async requestDidStart() {
        return {
          async didEncounterErrors({ errors, contextValue, operationName }) {
            for (const error of errors) {
              if (isDeliberateError(error)) continue;
              const cause = error.originalError ?? error;
              log.error(
                {
                  service,
                  requestId: contextValue.requestId,
                  operationName,
                  path: error.path,
                  err: cause,
                },
                'unexpected error (masked for the client)',
              );
            }
          },
          async willSendResponse({ response, contextValue }) {
            if (response.body.kind !== 'single') return;
            const errors = response.body.singleResult.errors;
            if (!errors) return;
            // A subgraph's error keeps the id the subgraph saw (the same one, when forwarded).
            response.body.singleResult.errors = errors.map((error) => ({
              ...error,
              extensions: { ...error.extensions, requestId: error.extensions?.requestId ?? contextValue.requestId },
            }));
          },
        };
      },
    },
  };
}
