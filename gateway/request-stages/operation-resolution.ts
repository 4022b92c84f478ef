/**
 * A request whose `operationName` names no operation of its document is refused as the catalogue
 * says (OPERATION_RESOLUTION_FAILURE, HTTP 400), before the gateway plans it. (Apollo Gateway would
 * otherwise fail inside planning, and the client would only see an internal error.) So is an
 * operation of a type the schema has no root for (`mutation`, `subscription`): HTTP 400,
 * GRAPHQL_VALIDATION_FAILED.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { codedError } from '../../policy/errors.js';

export function useOperationResolution(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, request, schema }) {
          if (operation) {
            // graphql-js 16 validates no operation type against the schema's roots; execution would fail
            // inside the gateway and answer an internal error.
            if (operation.operation !== 'query' && !schema.getRootType(operation.operation)) {
              const error = codedError('GRAPHQL_VALIDATION_FAILED', `This API has no ${operation.operation} operations: it is read-only; send a query.`);
              Object.assign(error.extensions, { http: { status: 400 } });
              throw error;
            }
            return;
          }
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
