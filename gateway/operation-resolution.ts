/**
 * A request whose `operationName` names no operation of its document is refused as the catalogue
 * says (OPERATION_RESOLUTION_FAILURE, HTTP 400), before the gateway plans it. (Apollo Gateway would
 * otherwise fail inside planning, and the client would only see an internal error.)
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { codedError } from '../policy/errors.js';

export function useOperationResolution(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, request }) {
          if (operation) return;
          const operationName = request.operationName;
          const error = codedError(
            'OPERATION_RESOLUTION_FAILURE',
            operationName ? `Unknown operation named "${operationName.slice(0, 100)}".` : 'The document holds several operations: name one with operationName.',
          );
          Object.assign(error.extensions, { http: { status: 400 } });
          throw error;
        },
      };
    },
  };
}
