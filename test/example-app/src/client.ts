/**
 * A minimal typed GraphQL client: it sends only the document's hash (trusted documents), with the
 * app's token, and returns data typed by the operation; subscriptions stream over SSE.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient } from 'graphql-sse';

export interface ClientOptions {
  /** The gateway's GraphQL endpoint. */
  readonly url: string;
  /** A token issued to this app (its `azp` names the app). */
  readonly token: string;
}

export interface Answer<T> {
  readonly data: T | null;
  readonly errors?: readonly { message: string; extensions?: Record<string, unknown> }[];
}

/** The id codegen embedded in the document (`sha256:<hex>`, `persistedDocuments.mode: embedHashInDocument`). */
function hashOf(document: object): string {
  const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!hash) throw new Error('The document has no embedded hash: run `npm run codegen`.');
  return hash;
}

export async function execute<Result, Variables>(
  options: ClientOptions,
  document: TypedDocumentNode<Result, Variables>,
  variables: Variables,
): Promise<Answer<Result>> {
  const response = await fetch(options.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${options.token}`, 'apollographql-client-name': 'example-app' },
    body: JSON.stringify({ documentId: hashOf(document), variables }),
  });
  const answer = (await response.json()) as Answer<Result>;
  if (!answer.data && answer.errors?.length) {
    throw new Error(`The gateway refused the operation: ${answer.errors.map((e) => `${String(e.extensions?.code)}: ${e.message}`).join('; ')}`);
  }
  return answer;
}

/**
 * Subscribes to a registered subscription by hash, over GraphQL over SSE (graphql-sse's client,
 * distinct connections), and yields each result typed by the operation. `after` resumes after a
 * position an earlier result carried.
 */
export function subscribe<Result, Variables extends Record<string, unknown>>(
  options: ClientOptions,
  document: TypedDocumentNode<Result, Variables>,
  variables: Variables,
): AsyncIterableIterator<Answer<Result>> {
  const client = createClient({
    url: options.url.replace(/\/graphql$/, '/graphql/stream'),
    headers: { authorization: `Bearer ${options.token}`, 'apollographql-client-name': 'example-app' },
    retryAttempts: 0,
  });
  // The registered text is the gateway's to put in: the request names it by its hash only.
  const hash = hashOf(document).slice('sha256:'.length);
  return client.iterate({ query: '', variables, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } }) as AsyncIterableIterator<Answer<Result>>;
}
