/**
 * `_entities(representations:)` takes `_Any`: any JSON. A representation that is not an object, names
 * a type this subgraph does not resolve, or lacks a key field, or whose key value is not text, would
 * otherwise reach a resolver or the warehouse and fail there as an internal error. Each is refused
 * up front (HTTP 400, INVALID_ARGUMENT, saying which representation and why).
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { Kind, valueFromASTUntyped, type FieldNode } from 'graphql';
import { codedError } from '../../policy/errors.js';

/** A key value longer than this is no key of ours. */
const MAX_KEY_LENGTH = 256;

function invalid(message: string): never {
  const error = codedError('INVALID_ARGUMENT', message, { argument: 'representations' });
  Object.assign(error.extensions, { http: { status: 400 } });
  throw error;
}

/** Why a representation cannot be resolved here, or null when it can. */
export function representationProblem(representation: unknown, keyFields: ReadonlyMap<string, readonly string[]>): string | null {
  if (representation === null || typeof representation !== 'object' || Array.isArray(representation)) return 'is not an object';
  const { __typename: typename, ...key } = representation as Record<string, unknown>;
  if (typeof typename !== 'string') return 'has no __typename';
  const fields = keyFields.get(typename);
  if (!fields) return `names "${typename.slice(0, 64)}", which is not an entity of this subgraph`;
  for (const field of fields) {
    const value = key[field];
    if (value === undefined || value === null) return `lacks its key field "${field}"`;
    if (typeof value !== 'string' || value.length > MAX_KEY_LENGTH) return `has a "${field}" that is not an id (text of at most ${MAX_KEY_LENGTH} characters)`;
  }
  return null;
}

export function useRepresentationCheck(keyFields: ReadonlyMap<string, readonly string[]>): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, request }) {
          if (!operation) return;
          const entities = operation.selectionSet.selections.filter((s): s is FieldNode => s.kind === Kind.FIELD && s.name.value === '_entities');
          for (const field of entities) {
            const argument = field.arguments?.find((a) => a.name.value === 'representations');
            if (!argument) continue;
            const value = valueFromASTUntyped(argument.value, (request.variables ?? {}) as Record<string, unknown>);
            const list = Array.isArray(value) ? value : [value];
            list.forEach((representation, index) => {
              const problem = representationProblem(representation, keyFields);
              if (problem) invalid(`Representation ${index} of _entities ${problem}.`);
            });
          }
        },
      };
    },
  };
}
