/**
 * The registry as a service (`/registry/v1` on the gateway, when it serves from a registry): check,
 * publish, roll back, remove and read subgraphs, and register client documents, over HTTP, for
 * teams whose domains run anywhere.
 *
 * Every call carries a token of an issuer the mesh trusts (the gateway's own identity
 * configuration); its `teams` claim (AUTH_CLAIMS `attributes.teams`) says which teams it acts for.
 * A subgraph belongs to the team that first published it through this API, or to the team the
 * governance group sets (`REGISTRY_GOVERNANCE_ROLES`, default `admin`); only that team's tokens,
 * and the governance group's, may publish, roll back or remove it. A subgraph published before it
 * had an owner (by the platform's operators, on the store) is the governance group's to assign.
 * Each write is recorded by its verified publisher (`<subject> (team <team>)`), never a name the
 * caller typed, and audited in the gateway's audit chain, refused attempts included.
 *
 *   GET    /registry/v1/subgraphs                      the serving subgraphs, with their owners
 *   GET    /registry/v1/subgraphs/:name/history        its versions, newest first
 *   GET    /registry/v1/subgraphs/:name/documents      a version's data product documents (?version=N)
 *   POST   /registry/v1/subgraphs/:name/check          { sdl, url?, dataProducts? }: would it be accepted?
 *   POST   /registry/v1/subgraphs/:name/publish        { sdl, url?, dataProducts?, team? }
 *   POST   /registry/v1/subgraphs/:name/rollback       { version? }
 *   DELETE /registry/v1/subgraphs/:name                removes it from the supergraph (history stays)
 *   PUT    /registry/v1/subgraphs/:name/owner          { team }: the governance group only
 *   POST   /registry/v1/clients/:client/documents      { documents: [{ name, body }] }: the client's own token (azp), or governance
 */
import express, { type Request, type Response, type Router } from 'express';
import { buildSchema, parse, validate, type GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import { boundedName, type AuditSink, type RegistryAuditRecord } from '../../policy/audit.js';
import { governanceRules } from '../../policy/governance.rules.js';
import { TokenRejectedError, type TokenVerifier } from '../../policy/identity.js';
import type { Principal } from '../../policy/principal.js';
import type { GovernanceRules } from '../../policy/rules.js';
import { documentProblems, type ProductDocument } from '../catalog/domain-entries.js';
import type { CheckReport } from './checks.js';
import { RegistryError, type RegistryErrorCode } from './codes.js';
import { checkProposal, publishedHistory, publishedVersion, publishSubgraph, removeSubgraph, rollbackSubgraph, setSubgraphOwner, type WriteAuthorization } from './publish.js';
import { assertClientName, assertSubgraphName, type Registry, type SubgraphOwner } from './registry.js';

export interface RegistryApiOptions {
  readonly registry: Registry;
  readonly verifier: TokenVerifier;
  /** The gateway's audit sink: each write, accepted or refused, is a `registry-write` record. */
  readonly audit: AuditSink;
  readonly log: Logger;
  /** Roles of the governance group (env `REGISTRY_GOVERNANCE_ROLES`, default `admin`). */
  readonly governanceRoles: readonly string[];
  /** The principal attribute that lists its teams (default `teams`). */
  readonly teamAttribute?: string;
  readonly rules?: GovernanceRules;
  /** Usage within this many days protects what clients use (default 30). */
  readonly usageDays?: number;
}

const STATUS: Partial<Record<RegistryErrorCode, number>> = {
  REGISTRY_UNAUTHENTICATED: 401,
  REGISTRY_FORBIDDEN: 403,
  REGISTRY_UNKNOWN_SUBGRAPH: 404,
  REGISTRY_UNKNOWN_VERSION: 404,
  REGISTRY_UNAVAILABLE: 503,
  REGISTRY_SDL_UNAVAILABLE: 502,
  REGISTRY_DOCUMENTS_UNAVAILABLE: 400,
};

type Action = RegistryAuditRecord['action'];

/** A report as the API answers it (the composed supergraph and documents left out). */
function reportBody(report: CheckReport) {
  const { composed: _composed, dataProducts: _documents, ...rest } = report;
  return rest;
}

function body(req: Request): Record<string, unknown> {
  const value: unknown = req.body;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RegistryError('REGISTRY_USAGE', 'The body must be a JSON object.');
  return value as Record<string, unknown>;
}

function text(value: unknown, what: string, optional = false): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value === '') throw new RegistryError('REGISTRY_USAGE', `${what} must be a non-empty string.`);
  return value;
}

function dataProductsOf(value: unknown, subgraph: string): readonly ProductDocument[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new RegistryError('REGISTRY_DOCUMENTS_UNAVAILABLE', 'dataProducts must be a list of { id, odps, odcs, profile? }.');
  for (const product of value as ProductDocument[]) {
    const problems = documentProblems(product);
    if (problems.length > 0) throw new RegistryError('REGISTRY_DOCUMENTS_UNAVAILABLE', `${subgraph}: a malformed data product document (${String(product?.id).slice(0, 80)}): ${problems.join('; ')}`);
  }
  return value as ProductDocument[];
}

export function registryApi(options: RegistryApiOptions): Router {
  const { registry, verifier, audit, log } = options;
  const teamAttribute = options.teamAttribute ?? 'teams';
  const judge = { usageDays: options.usageDays ?? 30, rules: options.rules ?? governanceRules };
  const router = express.Router();
  router.use(express.json({ limit: '10mb' }));
  // A body that is not JSON, or too large: answered in the API's own shape.
  router.use((error: { type?: string }, _req: Request, res: Response, next: (error?: unknown) => void) => {
    if (typeof error?.type !== 'string') return next(error);
    const tooLarge = error.type === 'entity.too.large';
    res.status(tooLarge ? 413 : 400).json({ error: { code: 'REGISTRY_USAGE', message: tooLarge ? 'The body is larger than 10 MB.' : 'The body is not valid JSON.' }, requestId: res.locals.requestId });
  });

  const teamsOf = (principal: Principal) => principal.attributes[teamAttribute] ?? [];
  const isGovernance = (principal: Principal) => principal.roles.some((role) => options.governanceRoles.includes(role));
  const who = (principal: Principal, team?: string) => `${principal.subject ?? '(no subject)'}${team ? ` (team ${team})` : isGovernance(principal) ? ' (governance)' : ''}`;

  async function record(res: Response, principal: Principal | null, action: Action, target: { subgraph?: string; client?: string }, outcome: RegistryAuditRecord['outcome'], extra: { reason?: string; version?: number; team?: string } = {}): Promise<void> {
    await audit
      .append({
        kind: 'registry-write',
        service: 'gateway',
        requestId: String(res.locals.requestId ?? ''),
        at: new Date().toISOString(),
        subject: principal?.subject ?? null,
        roles: principal?.roles ?? [],
        purpose: principal?.purpose ?? null,
        teams: principal ? teamsOf(principal) : [],
        action,
        // As the caller wrote them (a refused call's may be anything): bounded.
        subgraph: boundedName(target.subgraph),
        client: boundedName(target.client),
        outcome,
        ...extra,
      }, { durable: principal !== null }) // an anonymous caller cannot make the gateway fsync at will
      .catch((error: unknown) => log.error({ err: error, action }, 'a registry write could not be audited'));
  }

  /** The verified principal of the call; no token, or one the mesh does not trust, is refused. */
  async function principalOf(req: Request): Promise<Principal> {
    let principal: Principal;
    try {
      principal = await verifier.verify(req.headers.authorization);
    } catch (error) {
      if (error instanceof TokenRejectedError) throw new RegistryError('REGISTRY_UNAUTHENTICATED', `The token is refused: ${error.reason} (${error.message})`);
      throw error;
    }
    if (principal.anonymous || !principal.subject) throw new RegistryError('REGISTRY_UNAUTHENTICATED', 'The registry API needs a bearer token that names its subject.');
    return principal;
  }

  /**
   * Who may write a subgraph: its owner's teams, and the governance group; a name never published,
   * the team that claims it (the token's only team, or the one it names). `acting.team` is set to
   * the team the write is made for.
   */
  function authorization(principal: Principal, name: string, requestedTeam: string | undefined, acting: { team?: string } = {}): WriteAuthorization {
    return (owner, everPublished) => {
      const teams = teamsOf(principal);
      const as = (team: string | undefined) => ((acting.team = team), who(principal, team));
      if (requestedTeam !== undefined && !teams.includes(requestedTeam) && !isGovernance(principal)) {
        throw new RegistryError('REGISTRY_FORBIDDEN', `The token does not act for team "${requestedTeam.slice(0, 60)}" (its teams: ${teams.join(', ') || 'none'}).`);
      }
      if (owner) {
        if (teams.includes(owner.team)) return { publishedBy: as(owner.team), claim: null };
        if (isGovernance(principal)) return { publishedBy: as(undefined), claim: null };
        throw new RegistryError('REGISTRY_FORBIDDEN', `"${name}" belongs to team "${owner.team}"; the token acts for ${teams.length > 0 ? `team ${teams.join(', ')}` : 'no team'}.`);
      }
      if (isGovernance(principal)) return { publishedBy: as(undefined), claim: requestedTeam ? { team: requestedTeam, setBy: who(principal) } : null };
      if (everPublished) throw new RegistryError('REGISTRY_FORBIDDEN', `"${name}" has no owning team yet: the governance group assigns it (PUT /registry/v1/subgraphs/${name}/owner).`);
      const team = requestedTeam ?? (teams.length === 1 ? teams[0] : undefined);
      if (!team) throw new RegistryError('REGISTRY_FORBIDDEN', teams.length === 0 ? 'The token names no team (its `teams` claim is empty): it cannot publish.' : `The token acts for several teams (${teams.join(', ')}): say which claims "${name}" with "team".`);
      return { publishedBy: as(team), claim: { team, setBy: who(principal, team) } };
    };
  }

  /** Runs a handler: its RegistryError answers with its code and status; a write's refusals are audited. */
  const handle =
    (action: Action | null, work: (req: Request, res: Response, principal: Principal) => Promise<void>) =>
    async (req: Request, res: Response): Promise<void> => {
      let principal: Principal | null = null;
      const target = { subgraph: typeof req.params.name === 'string' ? req.params.name : undefined, client: typeof req.params.client === 'string' ? req.params.client : undefined };
      try {
        principal = await principalOf(req);
        await work(req, res, principal);
      } catch (error) {
        const registryError = error instanceof RegistryError ? error : null;
        const code: RegistryErrorCode = registryError?.code ?? 'REGISTRY_UNAVAILABLE';
        if (!registryError) log.error({ err: error }, 'a registry API call failed');
        const message = registryError?.message ?? 'The registry could not do this; see the gateway log.';
        if (action) await record(res, principal, action, target, code === 'REGISTRY_UNAUTHENTICATED' ? 'unauthenticated' : code === 'REGISTRY_FORBIDDEN' ? 'forbidden' : 'failed', { reason: `${code}: ${message}`.slice(0, 500) });
        res.status(STATUS[code] ?? 400).json({ error: { code, message }, requestId: res.locals.requestId });
      }
    };

  const nameOf = (req: Request) => assertSubgraphName(String(req.params.name));

  router.get(
    '/subgraphs',
    handle(null, async (_req, res) => {
      const [state, owners] = await Promise.all([registry.state(), registry.owners()]);
      res.json({
        revision: state?.revision ?? 0,
        supergraphVersion: state?.supergraphVersion ?? null,
        subgraphs: (state?.subgraphs ?? []).map(({ sdl: _sdl, dataProducts: _documents, ...version }) => ({ ...version, owner: owners[version.name] ?? null })),
      });
    }),
  );
  router.get(
    '/subgraphs/:name/history',
    handle(null, async (req, res) => {
      const name = nameOf(req);
      const { history, serving } = await publishedHistory(registry, name);
      res.json({ subgraph: name, serving, owner: (await registry.owners())[name] ?? null, versions: history.map(({ sdl: _sdl, dataProducts, ...v }) => ({ ...v, dataProducts: dataProducts?.map((p) => ({ id: p.id, version: p.odps.version })) ?? null })) });
    }),
  );
  router.get(
    '/subgraphs/:name/documents',
    handle(null, async (req, res) => {
      const asked = req.query.version === undefined ? undefined : Number(req.query.version);
      if (asked !== undefined && (!Number.isSafeInteger(asked) || asked < 1)) throw new RegistryError('REGISTRY_USAGE', '"version" must be a whole number of at least 1.');
      const version = await publishedVersion(registry, nameOf(req), asked);
      res.json({ subgraph: version.name, version: version.version, publishedAt: version.publishedAt, dataProducts: version.dataProducts });
    }),
  );

  const proposalOf = async (req: Request, name: string) => {
    const fields = body(req);
    const sdl = text(fields.sdl, 'sdl')!;
    const serving = (await registry.state())?.subgraphs.find((s) => s.name === name);
    const url = text(fields.url, 'url', true) ?? serving?.url;
    if (!url) throw new RegistryError('REGISTRY_USAGE', `${name} has no published version yet: give its routing URL ("url").`);
    const dataProducts = dataProductsOf(fields.dataProducts, name);
    return { fields, proposal: { name, url, sdl, ...(dataProducts !== undefined ? { dataProducts } : {}) } };
  };

  router.post(
    '/subgraphs/:name/check',
    handle(null, async (req, res) => {
      const { proposal } = await proposalOf(req, nameOf(req));
      const report = await checkProposal(registry, proposal, judge);
      res.status(report.accepted ? 200 : 422).json({ report: reportBody(report) });
    }),
  );
  router.post(
    '/subgraphs/:name/publish',
    handle('publish', async (req, res, principal) => {
      const name = nameOf(req);
      const { fields, proposal } = await proposalOf(req, name);
      const team = text(fields.team, 'team', true);
      // Who publishes is the verified token, with the team it acts for (decided under the lock).
      const acting: { team?: string } = {};
      const outcome = await publishSubgraph(registry, { ...proposal, publishedBy: who(principal) }, { ...judge, authorize: authorization(principal, name, team, acting) });
      await record(res, principal, 'publish', { subgraph: name }, outcome.published ? 'accepted' : outcome.report.unchanged ? 'unchanged' : 'refused', { ...(outcome.published ? { version: outcome.published.version } : {}), ...(acting.team ? { team: acting.team } : {}) });
      res.status(outcome.report.accepted ? 200 : 422).json({ report: reportBody(outcome.report), published: outcome.published && { ...outcome.published, sdl: undefined, dataProducts: undefined }, revision: outcome.revision });
    }),
  );
  router.post(
    '/subgraphs/:name/rollback',
    handle('rollback', async (req, res, principal) => {
      const name = nameOf(req);
      const fields = body(req);
      const version = fields.version === undefined ? undefined : Number(fields.version);
      if (version !== undefined && (!Number.isSafeInteger(version) || version < 1)) throw new RegistryError('REGISTRY_USAGE', '"version" must be a whole number of at least 1.');
      const outcome = await rollbackSubgraph(registry, { ...judge, name, ...(version !== undefined ? { version } : {}), publishedBy: who(principal), authorize: authorization(principal, name, undefined) });
      await record(res, principal, 'rollback', { subgraph: name }, outcome.published ? 'accepted' : 'refused', outcome.published ? { version: outcome.published.version } : {});
      res.status(outcome.report.accepted ? 200 : 422).json({ report: reportBody(outcome.report), published: outcome.published && { ...outcome.published, sdl: undefined, dataProducts: undefined }, revision: outcome.revision });
    }),
  );
  router.delete(
    '/subgraphs/:name',
    handle('remove', async (req, res, principal) => {
      const name = nameOf(req);
      const outcome = await removeSubgraph(registry, { ...judge, name, authorize: authorization(principal, name, undefined) });
      await record(res, principal, 'remove', { subgraph: name }, outcome.removed ? 'accepted' : 'refused');
      res.status(outcome.removed ? 200 : 422).json({ report: reportBody(outcome.report), removed: outcome.removed, revision: outcome.revision });
    }),
  );
  router.put(
    '/subgraphs/:name/owner',
    handle('set-owner', async (req, res, principal) => {
      const name = nameOf(req);
      if (!isGovernance(principal)) throw new RegistryError('REGISTRY_FORBIDDEN', `Only the governance group (roles ${options.governanceRoles.join(', ')}) sets a subgraph's owner.`);
      const team = text(body(req).team, 'team')!;
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(team)) throw new RegistryError('REGISTRY_INVALID_NAME', `Team "${team.slice(0, 60)}" must be 1-63 letters, digits, ., - or _.`);
      await setSubgraphOwner(registry, { name, team, setBy: who(principal) });
      await record(res, principal, 'set-owner', { subgraph: name }, 'accepted', { team });
      res.json({ subgraph: name, owner: (await registry.owners())[name] as SubgraphOwner });
    }),
  );
  router.post(
    '/clients/:client/documents',
    handle('register-documents', async (req, res, principal) => {
      const client = assertClientName(String(req.params.client));
      if (principal.client !== client && !isGovernance(principal)) {
        throw new RegistryError('REGISTRY_FORBIDDEN', `Only ${client}'s own tokens (azp ${client}) or the governance group register its documents; this token is ${principal.client ? `${principal.client}'s` : 'no client\'s'}.`);
      }
      const documents = body(req).documents;
      if (!Array.isArray(documents) || documents.length === 0 || documents.some((d) => typeof d?.name !== 'string' || typeof d?.body !== 'string')) {
        throw new RegistryError('REGISTRY_USAGE', '"documents" must be a non-empty list of { name, body }.');
      }
      const state = await registry.state();
      if (!state) throw new RegistryError('REGISTRY_INVALID_DOCUMENT', 'The registry has no API schema yet to validate documents against.');
      const schema = buildSchema(state.apiSchemaSdl);
      for (const { name, body: document } of documents as { name: string; body: string }[]) {
        let errors: readonly GraphQLError[];
        try {
          errors = validate(schema, parse(document));
        } catch (error) {
          errors = [error as GraphQLError];
        }
        if (errors.length > 0) throw new RegistryError('REGISTRY_INVALID_DOCUMENT', `${name.slice(0, 80)} does not validate against the current API schema: ${errors.map((e) => e.message).join('; ')}`);
      }
      await registry.registerDocuments((documents as { name: string; body: string }[]).map(({ name, body: document }) => ({ client, name, body: document, registeredBy: who(principal) })));
      await record(res, principal, 'register-documents', { client }, 'accepted');
      res.json({ client, registered: documents.length });
    }),
  );
  return router;
}
