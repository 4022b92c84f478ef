/**
 * Trusted documents: an app registered with a persisted-documents manifest (hash → operation) may
 * send only those operations, by hash; analysts and other callers keep ad-hoc queries, and may use
 * any registered hash too.
 *
 * The app is the token's client (`azp`, see policy/principal.ts), never a header the caller
 * chooses. A request names its document with `documentId: "sha256:<hex>"` (GraphQL over HTTP's
 * persisted documents) or Apollo's `extensions.persistedQuery.sha256Hash`, by POST or GET; the
 * gateway puts the registered text in its place before Apollo Server sees the request.
 */
import type { RequestHandler } from 'express';
import { errorResponseBody, ERRORS } from '../../policy/errors.js';
import type { Principal } from '../../policy/principal.js';
import type { ClientDocument } from '../registry/registry.js';

/** How a manifest entry is named in the registry: `sha256:` and the hex SHA-256 of the document. */
export const DOCUMENT_ID = /^sha256:[0-9a-f]{64}$/;

export interface TrustedDocuments {
  /** The registered text of a document of this client (or, with `client` null, of any client). */
  documentFor(id: string, client: string | null): string | undefined;
  /** Whether the client registered a manifest: it may then send nothing else. */
  isTrustedClient(client: string): boolean;
}

export function trustedDocumentsOf(documents: readonly ClientDocument[]): TrustedDocuments {
  const byClient = new Map<string, Map<string, string>>();
  const any = new Map<string, string>();
  for (const document of documents) {
    if (!DOCUMENT_ID.test(document.name)) continue;
    if (!byClient.has(document.client)) byClient.set(document.client, new Map());
    byClient.get(document.client)!.set(document.name, document.body);
    any.set(document.name, document.body);
  }
  return {
    documentFor: (id, client) => (client ? byClient.get(client)?.get(id) : any.get(id)),
    isTrustedClient: (client) => byClient.has(client),
  };
}

/** `sha256:<hex>` from a `documentId`, or from Apollo's persisted-query extension. */
function documentIdOf(documentId: unknown, extensions: unknown): string | null {
  if (typeof documentId === 'string') return documentId;
  const hash = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery?.sha256Hash;
  return typeof hash === 'string' ? `sha256:${hash}` : null;
}

function parseJson(value: string | null): Record<string, unknown> | undefined {
  if (!value) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export type DocumentRefusal = { readonly code: 'TRUSTED_DOCUMENT_REQUIRED' | 'PERSISTED_DOCUMENT_NOT_FOUND'; readonly message: string };

/**
 * The document a request runs: its own query (null: nothing to put in its place), the registered
 * text its id names, or a refusal (an app held to trusted documents sending an ad-hoc document, an
 * unknown id, a text that is not the registered one). For HTTP requests and subscriptions alike.
 */
export function resolveTrustedDocument(
  source: { readonly query?: unknown; readonly documentId?: unknown; readonly extensions?: unknown },
  principal: Principal,
  documents: TrustedDocuments,
): { readonly text: string | null } | { readonly refusal: DocumentRefusal } {
  const trustedOnly = principal.client !== null && documents.isTrustedClient(principal.client);
  const id = documentIdOf(source.documentId, source.extensions);
  if (id === null) {
    if (trustedOnly) return { refusal: { code: 'TRUSTED_DOCUMENT_REQUIRED', message: `The app "${principal.client}" may send only its registered documents, by documentId; ad-hoc queries are refused.` } };
    return { text: null };
  }
  const text = DOCUMENT_ID.test(id) ? documents.documentFor(id, trustedOnly ? principal.client : null) : undefined;
  if (text === undefined) return { refusal: { code: 'PERSISTED_DOCUMENT_NOT_FOUND', message: `No registered document ${id.slice(0, 80)}${trustedOnly ? ` for the app "${principal.client}"` : ''}.` } };
  // An empty query stands for none (the WebSocket protocol requires the field).
  if (typeof source.query === 'string' && source.query !== '' && source.query !== text) return { refusal: { code: 'PERSISTED_DOCUMENT_NOT_FOUND', message: `The query text sent with ${id} is not the registered document.` } };
  return { text };
}

/** Express middleware, after authentication and body parsing, before Apollo Server. */
export function useTrustedDocuments(current: () => TrustedDocuments): RequestHandler {
  return (req, res, next) => {
    const principal = res.locals.principal as Principal;
    const get = req.method === 'GET';
    const url = new URL(req.originalUrl, 'http://gateway');
    const source: Record<string, unknown> = get
      ? { query: url.searchParams.get('query') ?? undefined, documentId: url.searchParams.get('documentId') ?? undefined, extensions: parseJson(url.searchParams.get('extensions')) }
      : ((req.body ?? {}) as Record<string, unknown>);
    const resolved = resolveTrustedDocument(source, principal, current());
    if ('refusal' in resolved) {
      const { code, message } = resolved.refusal;
      res.status(ERRORS[code].httpStatus).json(errorResponseBody(code, message, res.locals.requestId as string));
      return;
    }
    if (resolved.text === null) return next();
    const text = resolved.text;
    const extensions = source.extensions && typeof source.extensions === 'object' ? { ...(source.extensions as Record<string, unknown>) } : undefined;
    if (extensions) delete extensions.persistedQuery;
    if (get) {
      url.searchParams.set('query', text);
      url.searchParams.delete('documentId');
      if (extensions) url.searchParams.set('extensions', JSON.stringify(extensions));
      req.url = `${req.url.split('?')[0]}?${url.searchParams.toString()}`;
    } else {
      const { documentId: _documentId, ...rest } = source;
      req.body = { ...rest, query: text, ...(extensions ? { extensions } : {}) };
    }
    next();
  };
}

/** Refuses every request of an app held to trusted documents (the CSV export is an ad-hoc query). */
export function refuseTrustedClients(current: () => TrustedDocuments): RequestHandler {
  return (_req, res, next) => {
    const principal = res.locals.principal as Principal;
    if (principal.client !== null && current().isTrustedClient(principal.client)) {
      res.status(400).json(errorResponseBody('TRUSTED_DOCUMENT_REQUIRED', `The app "${principal.client}" may send only its registered documents; it cannot export.`, res.locals.requestId as string));
      return;
    }
    next();
  };
}
