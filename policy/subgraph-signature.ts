/**
 * Signed gateway-to-subgraph calls: the gateway (and the platform's own tools: the registry's
 * `--introspect` and `publish-running`) sign each request to a subgraph with a key they share with
 * it, as Hive Gateway's HMAC upstream signature does; a subgraph answers only signed requests,
 * unless direct access is switched on (and even then `_service`, `_entities` and introspection only
 * to signed callers). A token alone does not open a subgraph: the gateway's limits, trusted
 * documents and pre-plan policy cannot be walked around.
 *
 * The signature, in the `x-mesh-signature` header, is `t=<unix ms>,v1=<hex HMAC-SHA256>` over the
 * time, the forwarded `Authorization` header and the SHA-256 of the body: a changed body or token
 * fails it, and a request replayed after the window (60 s by default) is refused.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { Kind, parse, type DocumentNode, type SelectionSetNode } from 'graphql';
import { errorResponseBody } from './errors.js';

export const SIGNATURE_HEADER = 'x-mesh-signature';
/** The development key: public on purpose, refused in production. */
export const DEV_SIGNING_KEY = 'local-development-subgraph-signing-key-do-not-use-in-production';
/** How old a signature may be (and how far in the future, for clock skew). */
export const SIGNATURE_WINDOW_MS = 60_000;

export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

/** During a rotation, the key the subgraphs still accept (env `SUBGRAPH_PREVIOUS_SIGNING_KEY`), if any. */
export function previousSigningKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const key = env.SUBGRAPH_PREVIOUS_SIGNING_KEY;
  if (!key) return undefined;
  if (key.length < 32) throw new SigningKeyError('SUBGRAPH_PREVIOUS_SIGNING_KEY must be at least 32 characters.');
  return key;
}

/** The key shared by the gateway, the tools and the subgraphs (env `SUBGRAPH_SIGNING_KEY`, 32 characters or more; required in production). */
export function signingKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const key = env.SUBGRAPH_SIGNING_KEY || DEV_SIGNING_KEY;
  if (env.NODE_ENV === 'production' && key === DEV_SIGNING_KEY) throw new SigningKeyError('SUBGRAPH_SIGNING_KEY must be set in production (the same secret for the gateway and every subgraph).');
  if (key.length < 32) throw new SigningKeyError('SUBGRAPH_SIGNING_KEY must be at least 32 characters.');
  return key;
}

function mac(key: string, time: string, authorization: string, body: string): string {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return createHmac('sha256', key).update(`${time}\n${authorization}\n${bodyHash}`).digest('hex');
}

/** The signature header's value for a request to a subgraph. */
export function signSubgraphRequest(options: { readonly key: string; readonly body: string; readonly authorization?: string | undefined; readonly now?: number }): string {
  const time = String(options.now ?? Date.now());
  return `t=${time},v1=${mac(options.key, time, options.authorization ?? '', options.body)}`;
}

export type SignatureCheck = 'valid' | 'missing' | 'malformed' | 'expired' | 'mismatch';

export function checkSubgraphSignature(options: {
  readonly key: string;
  readonly header: string | undefined;
  readonly body: string;
  readonly authorization?: string | undefined;
  readonly now?: number;
  readonly windowMs?: number;
}): SignatureCheck {
  if (!options.header) return 'missing';
  const match = /^t=(\d{1,15}),v1=([0-9a-f]{64})$/.exec(options.header);
  if (!match) return 'malformed';
  const [, time, given] = match as unknown as [string, string, string];
  if (Math.abs((options.now ?? Date.now()) - Number(time)) > (options.windowMs ?? SIGNATURE_WINDOW_MS)) return 'expired';
  const expected = mac(options.key, time, options.authorization ?? '', options.body);
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(given, 'hex')) ? 'valid' : 'mismatch';
}

/** Fields only signed callers may ask for, even with direct access on. */
const PLATFORM_FIELDS = new Set(['_service', '_entities', '__schema', '__type']);

function asksPlatformFields(document: DocumentNode): boolean {
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode): boolean =>
    set.selections.some((selection) => {
      if (selection.kind === Kind.FIELD) return PLATFORM_FIELDS.has(selection.name.value);
      if (selection.kind === Kind.INLINE_FRAGMENT) return walk(selection.selectionSet);
      if (seen.has(selection.name.value)) return false;
      seen.add(selection.name.value);
      const fragment = fragments.get(selection.name.value);
      return fragment ? walk(fragment.selectionSet) : false;
    });
  return document.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION && walk(d.selectionSet));
}

/** The raw body a JSON body parser kept (see `keepRawBody`). */
type WithRawBody = { rawBody?: Buffer };

/** For `express.json({ verify })`: keeps the body as received, for the signature. */
export const keepRawBody = (req: unknown, _res: unknown, buffer: Buffer): void => {
  (req as WithRawBody).rawBody = buffer;
};

/**
 * A subgraph's check of the gateway's signature, after the JSON body parser (with `keepRawBody`).
 * With `directAccess`, unsigned callers are let through to ordinary fields, never to `_service`,
 * `_entities` or introspection.
 */
export function requireGatewaySignature(options: {
  readonly key: string;
  /** During a key rotation, the key the gateway may still sign with (env `SUBGRAPH_PREVIOUS_SIGNING_KEY`). */
  readonly previousKey?: string | undefined;
  readonly directAccess: boolean;
}): RequestHandler {
  const { key, previousKey, directAccess } = options;
  const check = (header: string | undefined, body: string, authorization: string | undefined): SignatureCheck => {
    const current = checkSubgraphSignature({ key, header, body, authorization });
    if (current === 'mismatch' && previousKey) return checkSubgraphSignature({ key: previousKey, header, body, authorization });
    return current;
  };
  return (req, res, next) => {
    const raw = (req as WithRawBody).rawBody;
    // A GET carries its operation in the URL, which no signature covers: always unsigned.
    const result =
      req.method === 'POST' && raw
        ? check(req.get(SIGNATURE_HEADER), raw.toString('utf8'), req.headers.authorization)
        : req.get(SIGNATURE_HEADER)
          ? 'malformed'
          : 'missing';
    if (result === 'valid') return next();
    if (directAccess && result === 'missing') {
      const query = req.method === 'GET' ? req.query.query : (req.body as { query?: unknown } | undefined)?.query;
      let platform = false;
      try {
        platform = typeof query === 'string' && asksPlatformFields(parse(query));
      } catch {
        platform = false; // a syntax error: Apollo Server answers it
      }
      if (!platform) return next();
    }
    const why = { missing: 'it carries no gateway signature', malformed: 'its gateway signature is malformed', expired: 'its gateway signature is too old (or from the future)', mismatch: 'its gateway signature does not match its body and token' }[result];
    res
      .status(401)
      .json(errorResponseBody('SIGNATURE_REQUIRED', `This subgraph answers the gateway only: the request is refused because ${why}. Query the gateway.`, res.locals.requestId, { reason: result }));
  };
}
