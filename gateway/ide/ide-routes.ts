/**
 * The IDE's routes on the gateway: `/ide/` (the page), its bundle, `/ide/config.json` (the endpoint,
 * whether the development sign-in is offered: nothing about the schema, which anyone may fetch; the
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
import { governanceRules } from '../../policy/governance.rules.js';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data mesh IDE</title>
<link rel="stylesheet" href="./main.css">
<style>
  html, body, #ide { height: 100%; margin: 0; }
  .datamesh-ide { display: flex; flex-direction: column; height: 100%; }
  .datamesh-ide > header { display: flex; gap: 1.5rem; align-items: center; padding: 0.4rem 1rem; font: 14px system-ui, sans-serif; border-bottom: 1px solid #ddd; }
  .datamesh-title { font-weight: 600; }
  .datamesh-signin { display: flex; gap: 0.6rem; align-items: center; flex-wrap: wrap; }
  .datamesh-signin fieldset { display: inline-flex; gap: 0.4rem; border: none; padding: 0; margin: 0; }
  .datamesh-who { display: flex; gap: 0.6rem; align-items: center; }
  .datamesh-signed-out { max-width: 46rem; margin: 3rem auto; font: 15px system-ui, sans-serif; line-height: 1.5; }
  .datamesh-signed-out section { margin-top: 1.5rem; }
  .datamesh-signed-out textarea { width: 100%; font: 12px monospace; }
  .datamesh-error { color: #b00020; }
  .datamesh-ide .graphiql-container { flex: 1; min-height: 0; }
  .datamesh-view { border: 1px solid #ccc; background: #f6f6f6; padding: 0.25rem 0.8rem; cursor: pointer; }
  .datamesh-view.active { background: #fff; border-bottom-color: #fff; font-weight: 600; }
  .datamesh-catalog { flex: 1; overflow: auto; padding: 1rem 1.5rem; font: 14px system-ui, sans-serif; line-height: 1.45; }
  .datamesh-search { display: flex; gap: 0.5rem; margin-bottom: 1rem; }
  .datamesh-search input { flex: 1; padding: 0.4rem; font: inherit; }
  .datamesh-catalog-body { display: flex; gap: 1.5rem; align-items: flex-start; }
  .datamesh-facets { width: 16rem; flex: none; }
  .datamesh-facets h3 { font-size: 0.85rem; text-transform: uppercase; color: #555; margin: 0.8rem 0 0.3rem; }
  .datamesh-facet { display: block; width: 100%; text-align: left; border: none; background: none; padding: 0.15rem 0.3rem; cursor: pointer; font: inherit; }
  .datamesh-facet.active { background: #e3ecff; font-weight: 600; }
  .datamesh-results { flex: 1; }
  .datamesh-result { display: block; width: 100%; text-align: left; border: 1px solid #ddd; border-radius: 4px; background: #fff; padding: 0.6rem 0.8rem; margin-bottom: 0.5rem; cursor: pointer; font: inherit; }
  .datamesh-result:hover { border-color: #88a; }
  .datamesh-muted { color: #666; }
  .datamesh-primary { background: #2f5bd3; color: #fff; border: none; border-radius: 4px; padding: 0.4rem 0.9rem; cursor: pointer; }
  .datamesh-table { border-collapse: collapse; }
  .datamesh-table th, .datamesh-table td { border-bottom: 1px solid #eee; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
  .datamesh-access-masked { color: #8a5a00; }
  .datamesh-access-denied { color: #b00020; }
  .datamesh-access-readable { color: #1b6e2a; }
</style>
</head>
<body>
<div id="ide"></div>
<script type="module" src="./main.js"></script>
</body>
</html>
`;

const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/**
 * What the development sign-in offers: the governance rules' roles, every region (several may be
 * chosen), and the purposes RESTRICTED fields accept, so that every rule can be tried from the IDE.
 */
export const DEV_SIGN_IN = { roles: DEV_ROLES, regions: DEV_REGIONS, purposes: governanceRules.levels.RESTRICTED.purposes ?? [] } as const;

export interface IdeOptions {
  /** The folder with the built `main.js` and `main.css` (see build.ts). */
  readonly bundleDir: Promise<string>;
  readonly identity: IdentityConfig;
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

  router.get('/', (_req, res) => res.redirect(302, '/ide/'));
  router.get('/ide', (_req, res) => res.redirect(301, '/ide/'));
  router.get('/ide/', (_req, res) => {
    res.set({ 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' }).type('html').send(PAGE);
  });
  router.get('/ide/config.json', (_req, res) => {
    res.set('cache-control', 'no-store').json({
      endpoint: '/graphql',
      devSignIn: devIssuer ? DEV_SIGN_IN : null,
    });
  });
  for (const file of ['main.js', 'main.css'] as const) {
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
