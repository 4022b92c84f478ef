/**
 * The IDE's routes on the gateway: `/ide/` (the page), its bundle, `/ide/config.json` (the endpoint,
 * the sign-ins offered: development, OpenID Connect; nothing about the schema, which anyone may fetch; the
 * example operations come from the catalog, written for the signed-in caller) and,
 * only while the local-development issuer is trusted, `POST /ide/dev-token`. `/` redirects to the IDE.
 *
 * The page's Content-Security-Policy allows its own origin only: no CDN, no third-party script.
 */
import express, { type RequestHandler, type Router } from 'express';
import { join } from 'node:path';
import { errorResponseBody } from '../../policy/errors.js';
import { DEV_ISSUER, DEV_REGIONS, DEV_ROLES, mintDevToken } from '../../policy/identity-config.js';
import type { IdentityConfig } from '../../policy/identity.js';
import { BUNDLE_FILES } from './build.js';
import { signInOrigin, type IdeSignInConfig } from './ide-sign-in.js';
import { governanceRules } from '../../policy/governance.rules.js';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data mesh IDE</title>
<link rel="stylesheet" href="./main.css">
<style>
  /* GraphiQL's palette (graphiql/style.css), on the IDE's own pages too: the same look, light or
     dark as GraphiQL is (its stored theme, else the system's). */
  .datamesh-themed {
    --color-primary: 320, 95%, 43%; --color-error: 13, 93%, 58%; --color-success: 158, 60%, 42%; --color-warning: 36, 100%, 41%;
    --color-neutral: 219, 28%, 32%; --color-base: 219, 28%, 100%;
    --alpha-secondary: 0.76; --alpha-tertiary: 0.5; --alpha-background-heavy: 0.15; --alpha-background-medium: 0.1; --alpha-background-light: 0.07;
    --font-family: 'Roboto', system-ui, sans-serif; --font-family-mono: 'Fira Code', monospace; --font-size-body: calc(15rem / 16);
    --border-radius-4: 4px; --border-radius-8: 8px; --px-4: 4px; --px-6: 6px; --px-8: 8px; --px-12: 12px;
    background: hsl(var(--color-base)); color: hsl(var(--color-neutral)); font-family: var(--font-family); font-size: var(--font-size-body);
  }
  @media (prefers-color-scheme: dark) {
    body:not(.graphiql-light) .datamesh-themed { --color-primary: 338, 100%, 67%; --color-error: 13, 100%, 58%; --color-success: 158, 100%, 42%; --color-warning: 30, 100%, 80%; --color-neutral: 219, 29%, 78%; --color-base: 219, 29%, 18%; }
  }
  body.graphiql-dark .datamesh-themed { --color-primary: 338, 100%, 67%; --color-error: 13, 100%, 58%; --color-success: 158, 100%, 42%; --color-warning: 30, 100%, 80%; --color-neutral: 219, 29%, 78%; --color-base: 219, 29%, 18%; }
  html, body, #ide { height: 100%; margin: 0; }
  .datamesh-ide { display: flex; flex-direction: column; height: 100%; }
  .datamesh-ide > header { display: flex; gap: 1.5rem; align-items: center; padding: 0.4rem 1rem; border-bottom: 1px solid hsla(var(--color-neutral), var(--alpha-background-heavy)); }
  .datamesh-title { font-weight: 500; color: hsl(var(--color-neutral)); }
  .datamesh-themed .graphiql-button { background: hsla(var(--color-neutral), var(--alpha-background-light)); border: none; border-radius: var(--border-radius-4); color: hsl(var(--color-neutral)); cursor: pointer; font: inherit; padding: var(--px-6) var(--px-12); }
  .datamesh-themed .graphiql-button:hover { background: hsla(var(--color-neutral), var(--alpha-background-medium)); }
  .datamesh-themed .graphiql-button:disabled { opacity: 0.5; cursor: default; }
  .datamesh-themed input, .datamesh-themed select, .datamesh-themed textarea { background: hsla(var(--color-neutral), var(--alpha-background-light)); color: hsl(var(--color-neutral)); border: 1px solid hsla(var(--color-neutral), var(--alpha-background-heavy)); border-radius: var(--border-radius-4); font: inherit; padding: var(--px-4); }
  .datamesh-signin { display: flex; gap: 0.6rem; align-items: center; flex-wrap: wrap; }
  .datamesh-signin fieldset { display: inline-flex; gap: 0.4rem; border: none; padding: 0; margin: 0; }
  .datamesh-who { display: flex; gap: 0.8rem; align-items: center; margin-left: auto; }
  .datamesh-signed-out { box-sizing: border-box; min-height: 100%; padding: 3rem max(1rem, calc((100% - 46rem) / 2)); line-height: 1.5; }
  .datamesh-signed-out h1 { font-size: calc(29rem / 16); font-weight: 500; }
  .datamesh-signed-out section { margin-top: 1.5rem; }
  .datamesh-signed-out textarea { width: 100%; box-sizing: border-box; font-family: var(--font-family-mono); font-size: 12px; -webkit-text-security: disc; }
  .datamesh-error { color: hsl(var(--color-error)); }
  .datamesh-ide .graphiql-container { flex: 1; min-height: 0; }
  .datamesh-view { background: none; border: none; border-bottom: 2px solid transparent; color: hsla(var(--color-neutral), var(--alpha-secondary)); cursor: pointer; font: inherit; padding: 0.25rem 0.8rem; }
  .datamesh-view.active { border-bottom-color: hsl(var(--color-primary)); color: hsl(var(--color-neutral)); font-weight: 500; }
  .datamesh-catalog { flex: 1; overflow: auto; padding: 1rem 1.5rem; line-height: 1.45; }
  .datamesh-search { display: flex; gap: 0.5rem; margin-bottom: 1rem; }
  .datamesh-search input { flex: 1; padding: 0.4rem; }
  .datamesh-catalog-body { display: flex; gap: 1.5rem; align-items: flex-start; }
  .datamesh-facets { width: 16rem; flex: none; }
  .datamesh-facets h3 { font-size: 0.85rem; text-transform: uppercase; color: hsla(var(--color-neutral), var(--alpha-secondary)); margin: 0.8rem 0 0.3rem; }
  .datamesh-facet { display: block; width: 100%; text-align: left; border: none; background: none; color: inherit; padding: 0.15rem 0.3rem; cursor: pointer; font: inherit; border-radius: var(--border-radius-4); }
  .datamesh-facet.active { background: hsla(var(--color-primary), var(--alpha-background-medium)); font-weight: 500; }
  .datamesh-results { flex: 1; }
  .datamesh-result { display: block; width: 100%; text-align: left; border: 1px solid hsla(var(--color-neutral), var(--alpha-background-heavy)); border-radius: var(--border-radius-8); background: hsl(var(--color-base)); color: inherit; padding: 0.6rem 0.8rem; margin-bottom: 0.5rem; cursor: pointer; font: inherit; }
  .datamesh-result:hover { border-color: hsl(var(--color-primary)); }
  .datamesh-muted { color: hsla(var(--color-neutral), var(--alpha-secondary)); }
  .datamesh-themed .datamesh-primary { background: hsl(var(--color-primary)); color: hsl(var(--color-base)); }
  .datamesh-themed .datamesh-primary:hover { background: hsl(var(--color-primary)); opacity: 0.9; }
  .datamesh-table { border-collapse: collapse; }
  .datamesh-table th, .datamesh-table td { border-bottom: 1px solid hsla(var(--color-neutral), var(--alpha-background-heavy)); padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
  .datamesh-access-masked { color: hsl(var(--color-warning)); }
  .datamesh-access-denied { color: hsl(var(--color-error)); }
  .datamesh-access-readable { color: hsl(var(--color-success)); }
</style>
</head>
<body>
<div id="ide" class="datamesh-themed"></div>
<script type="module" src="./main.js"></script>
</body>
</html>
`;

/** Its own origin only; with an OpenID Connect sign-in, the provider's origin too, for discovery and the token endpoint. */
const cspFor = (signInOrigin: string | null) =>
  `default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'${signInOrigin ? ` ${signInOrigin}` : ''}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`;

/**
 * What the development sign-in offers: the governance rules' roles, every region (several may be
 * chosen), and the purposes RESTRICTED fields accept, so that every rule can be tried from the IDE.
 */
export const DEV_SIGN_IN = { roles: DEV_ROLES, regions: DEV_REGIONS, purposes: governanceRules.levels.RESTRICTED.purposes ?? [] } as const;

export interface IdeOptions {
  /** The folder with the built bundle (see build.ts). */
  readonly bundleDir: Promise<string>;
  readonly identity: IdentityConfig;
  /** The OpenID Connect sign-in the IDE offers (see ide-sign-in.ts), or null. */
  readonly signIn?: IdeSignInConfig | null;
}

/**
 * A browser opening the GraphQL endpoint (a GET that asks for HTML and names no operation, as a
 * click on the URL the banner prints does) is sent to the IDE, instead of a CSRF error in JSON.
 * Every GraphQL request (a query, a documentId, or a client that asks for JSON) is left alone.
 */
export const redirectBrowsersToIde: RequestHandler = (req, res, next) => {
  const asksForHtml = /\btext\/html\b/.test(req.get('accept') ?? '');
  const namesOperation = ['query', 'documentId', 'extensions'].some((name) => name in (req.query as Record<string, unknown>));
  if (req.method === 'GET' && asksForHtml && !namesOperation) {
    res.redirect(302, '/ide/');
    return;
  }
  next();
};

export function ideRouter(options: IdeOptions): Router {
  // Strict: `/ide` and `/ide/` are different routes (the page's relative URLs need the slash).
  const router = express.Router({ strict: true });
  // Development sign-in: never in production, where the development issuer is refused at start anyway.
  const devIssuer = process.env.NODE_ENV === 'production' ? undefined : options.identity.issuers.find((issuer) => issuer.issuer === DEV_ISSUER && issuer.secret);
  const purposes: readonly string[] = DEV_SIGN_IN.purposes;
  const signIn = options.signIn ?? null;
  const csp = cspFor(signInOrigin(signIn));

  router.get('/', (_req, res) => res.redirect(302, '/ide/'));
  router.get('/ide', (_req, res) => res.redirect(301, '/ide/'));
  router.get('/ide/', (_req, res) => {
    res.set({ 'content-security-policy': csp, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' }).type('html').send(PAGE);
  });
  router.get('/ide/config.json', (_req, res) => {
    res.set('cache-control', 'no-store').json({
      endpoint: '/graphql',
      devSignIn: devIssuer ? DEV_SIGN_IN : null,
      oidc: signIn && { issuer: signIn.issuer, clientId: signIn.clientId, scope: signIn.scope, resource: signIn.resource },
    });
  });
  for (const file of BUNDLE_FILES) {
    router.get(`/ide/${file}`, async (_req, res, next) => {
      try {
        res.set({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' }).sendFile(join(await options.bundleDir, file), { dotfiles: 'allow' }); // the cache is under node_modules/.cache
      } catch (error) {
        next(error);
      }
    });
  }
  if (devIssuer) {
    // Local development only: the issuer's secret is public and refused in production.
    router.post('/ide/dev-token', express.json({ limit: '2kb' }), (req, res) => {
      const body = (req.body ?? {}) as { role?: unknown; regions?: unknown; purpose?: unknown };
      const role = typeof body.role === 'string' && (DEV_SIGN_IN.roles as readonly string[]).includes(body.role) ? body.role : null;
      const regions = Array.isArray(body.regions) && body.regions.every((r) => (DEV_SIGN_IN.regions as readonly unknown[]).includes(r)) ? (body.regions as string[]) : null;
      const purpose = body.purpose === undefined ? null : typeof body.purpose === 'string' && purposes.includes(body.purpose) ? body.purpose : false;
      if (!role || !regions || purpose === false) {
        res
          .status(400)
          .json(errorResponseBody('BAD_REQUEST', `Give a role among ${DEV_SIGN_IN.roles.join(', ')}, regions among ${DEV_SIGN_IN.regions.join(', ')}, and optionally a purpose among ${purposes.join(', ')}.`, res.locals.requestId as string));
        return;
      }
      const token = mintDevToken({ subject: `ide-${role}`, roles: [role], regions, ...(purpose ? { purpose } : {}), expiresInSeconds: 8 * 3600 }, devIssuer);
      res.set('cache-control', 'no-store').json({ token });
    });
  }
  return router;
}
