import { describe, expect, it } from 'vitest';
import { GatewayConfigError, gatewayConfigFromEnv, manifestSubgraphs, subgraphEndpointsFromEnv } from './config.js';

describe('gateway configuration from the environment', () => {
  it('defaults to port 4000 on localhost, serving what the registry in the data folder publishes', () => {
    const config = gatewayConfigFromEnv({});
    expect(config).toMatchObject({ port: 4000, host: '127.0.0.1', composeTimeoutMs: 60_000 });
    expect(config.supergraph).toMatchObject({ kind: 'registry', pollMs: 1_000, registryUrl: expect.stringMatching(/data\/registry$/) });
    expect(config.supergraphPath).toMatch(/data\/supergraph\.graphql$/);
    expect(subgraphEndpointsFromEnv({})).toEqual(manifestSubgraphs({}));
    expect(manifestSubgraphs({}).map(({ name, url }) => `${name}=${url}`)).toEqual(['customers=http://127.0.0.1:4001/graphql', 'products=http://127.0.0.1:4002/graphql', 'finance=http://127.0.0.1:4003/graphql']);
  });

  it('bounds subscribers by SUBSCRIPTION_MAX_QUEUED_EVENTS and SUBSCRIPTION_MAX_BUFFERED_BYTES', () => {
    expect(gatewayConfigFromEnv({}).subscriptions).toEqual({ maxQueuedEvents: 1_000, maxBufferedBytes: 1_048_576 });
    expect(gatewayConfigFromEnv({ SUBSCRIPTION_MAX_QUEUED_EVENTS: '50', SUBSCRIPTION_MAX_BUFFERED_BYTES: '65536' }).subscriptions).toEqual({ maxQueuedEvents: 50, maxBufferedBytes: 65_536 });
  });

  it('reads PORT, SUBGRAPHS and the supergraph source', () => {
    const config = gatewayConfigFromEnv({ PORT: '5000', SUPERGRAPH_SOURCE: 'subgraphs', SUBGRAPHS: 'a=http://h:1/graphql, b=https://x.example/graphql' });
    expect(config.port).toBe(5000);
    expect(config.supergraph).toEqual({
      kind: 'subgraphs',
      subgraphs: [
        { name: 'a', url: 'http://h:1/graphql' },
        { name: 'b', url: 'https://x.example/graphql' },
      ],
    });
    expect(gatewayConfigFromEnv({ REGISTRY_URL: 'postgres://db/mesh?schema=reg', RELOAD_POLL_MS: '250' }).supergraph).toEqual({
      kind: 'registry',
      registryUrl: 'postgres://db/mesh?schema=reg',
      pollMs: 250,
    });
    expect(gatewayConfigFromEnv({ SUPERGRAPH_SOURCE: 'file', SUPERGRAPH_FILE: '/tmp/s.graphql' }).supergraph).toEqual({
      kind: 'file',
      path: '/tmp/s.graphql',
      pollMs: 1_000,
      unclassified: 'deny',
    });
    const allow = gatewayConfigFromEnv({ SUPERGRAPH_SOURCE: 'file', SUPERGRAPH_FILE: '/tmp/s.graphql', UNCLASSIFIED_FIELDS: 'INTERNAL' });
    expect(allow.supergraph).toMatchObject({ unclassified: 'INTERNAL' });
  });

  it('refuses bad values with a message that names them', () => {
    const subgraphs = { SUPERGRAPH_SOURCE: 'subgraphs' };
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: 'eighty' }, /PORT must be a whole number/],
      [{ ...subgraphs, SUBGRAPHS: 'nourl' }, /"nourl" is not name=url/],
      [{ ...subgraphs, SUBGRAPHS: 'a=http://h/graphql,a=http://i/graphql' }, /"a" is listed twice/],
      [{ ...subgraphs, SUBGRAPHS: 'a=file:///etc/passwd' }, /must be http or https/],
      [{ ...subgraphs, SUBGRAPHS: 'a=not a url' }, /invalid URL/],
      [{ ...subgraphs, SUBGRAPHS: 'Bad Name=http://h/graphql' }, /must be lower-case/],
      [{ SUPERGRAPH_SOURCE: 'consul' }, /SUPERGRAPH_SOURCE must be registry, file or subgraphs/],
      [{ SUPERGRAPH_SOURCE: 'file' }, /needs SUPERGRAPH_FILE/],
      [{ SUPERGRAPH_SOURCE: 'file', SUPERGRAPH_FILE: 'x', UNCLASSIFIED_FIELDS: 'yes' }, /UNCLASSIFIED_FIELDS must be deny, allow or a level/],
      // Our own subgraphs never get a looser treatment of unclassified fields.
      [{ UNCLASSIFIED_FIELDS: 'allow' }, /applies to SUPERGRAPH_SOURCE=file only/],
      [{ RELOAD_POLL_MS: '-5' }, /RELOAD_POLL_MS must be a whole number/],
      [{ SUBGRAPH_SIGNING_KEY: 'short' }, /SUBGRAPH_SIGNING_KEY must be at least 32 characters/],
      [{ NODE_ENV: 'production', AUTH_ISSUERS: JSON.stringify([{ issuer: 'https://idp.example/', audience: 'a', algorithms: ['RS256'], jwksUri: 'https://idp.example/jwks' }]) }, /SUBGRAPH_SIGNING_KEY must be set in production/],
      [{ GATEWAY_LIMITS: '{"roles": {"x": {"maxDepth": 0}}}' }, /roles\.x\.maxDepth must be a whole number of at least 1/],
      [{ RATE_LIMIT_REDIS_URL: 'http://redis:6379' }, /must be redis:\/\/ or rediss:\/\//],
      [{ SUBGRAPH_TIMEOUTS: 'finance' }, /SUBGRAPH_TIMEOUTS entry "finance" is not name=milliseconds/],
      [{ SUBSCRIPTION_MAX_QUEUED_EVENTS: '0' }, /SUBSCRIPTION_MAX_QUEUED_EVENTS must be at least 1/],
      [{ SUBSCRIPTION_MAX_BUFFERED_BYTES: 'lots' }, /SUBSCRIPTION_MAX_BUFFERED_BYTES must be a whole number/],
      [{ GATEWAY_LIMITS: '{"authenticated": {"maxSubscriptions": 0}}' }, /authenticated\.maxSubscriptions must be a whole number of at least 1/],
    ];
    for (const [env, message] of cases) {
      expect(() => gatewayConfigFromEnv(env)).toThrow(GatewayConfigError);
      expect(() => gatewayConfigFromEnv(env)).toThrow(message);
    }
  });
});

describe('the response cache configuration', () => {
  it('is in memory by default, and reads the store, the bounds and the poll', () => {
    expect(gatewayConfigFromEnv({}).responseCache).toMatchObject({ store: 'memory', ttlSeconds: 300, maxBytes: 64 * 1024 * 1024, versionsPollMs: 1_000 });
    expect(gatewayConfigFromEnv({ RESPONSE_CACHE: 'off' }).responseCache).toMatchObject({ store: 'off' });
    expect(gatewayConfigFromEnv({ RESPONSE_CACHE: 'memory', RESPONSE_CACHE_TTL_SECONDS: '60', RESPONSE_CACHE_MAX_BYTES: '1048576', RESPONSE_CACHE_VERSIONS_POLL_MS: '500' }).responseCache).toMatchObject({
      store: 'memory',
      ttlSeconds: 60,
      maxBytes: 1_048_576,
      versionsPollMs: 500,
    });
    expect(gatewayConfigFromEnv({ RESPONSE_CACHE: 'redis', RESPONSE_CACHE_REDIS_URL: 'redis://cache:6379/2' }).responseCache).toMatchObject({ store: 'redis', redisUrl: 'redis://cache:6379/2', redisPrefix: 'mesh-cache' });
  });

  it('refuses a wrong store, a Redis store without a Redis URL, and a URL of another kind, without echoing it', () => {
    expect(() => gatewayConfigFromEnv({ RESPONSE_CACHE: 'disk' })).toThrow(/RESPONSE_CACHE must be off, memory or redis, got "disk"/);
    expect(() => gatewayConfigFromEnv({ RESPONSE_CACHE: 'redis' })).toThrow(/needs RESPONSE_CACHE_REDIS_URL/);
    const secret = 'http://user:s3cret@cache:6379';
    expect(() => gatewayConfigFromEnv({ RESPONSE_CACHE: 'redis', RESPONSE_CACHE_REDIS_URL: secret })).toThrow(/must be redis:\/\/ or rediss:\/\//);
    try {
      gatewayConfigFromEnv({ RESPONSE_CACHE: 'redis', RESPONSE_CACHE_REDIS_URL: secret });
    } catch (error) {
      expect(String(error)).not.toContain('s3cret');
    }
    expect(() => gatewayConfigFromEnv({ RESPONSE_CACHE: 'memory', RESPONSE_CACHE_TTL_SECONDS: '0' })).toThrow(GatewayConfigError);
  });
});

describe('the IDE\'s OpenID Connect sign-in', () => {
  const provider = 'https://login.example.com/realms/acme';
  const trusted = JSON.stringify([{ issuer: provider, audience: 'data-mesh', algorithms: ['RS256'], jwksUri: `${provider}/protocol/openid-connect/certs` }]);

  it('is off unless an issuer is given, and reads the issuer, client id, scope and resource', () => {
    expect(gatewayConfigFromEnv({}).ideSignIn).toBeNull();
    expect(gatewayConfigFromEnv({ AUTH_ISSUERS: trusted, IDE_OIDC_ISSUER: provider, IDE_OIDC_CLIENT_ID: 'datamesh-ide', IDE_OIDC_RESOURCE: 'https://mesh.example.com/graphql' }).ideSignIn).toEqual({
      issuer: provider,
      clientId: 'datamesh-ide',
      scope: 'openid profile offline_access',
      resource: 'https://mesh.example.com/graphql',
    });
  });

  it('refuses a sign-in the gateway could not honour, naming what is wrong', () => {
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      // Every token the IDE would get would be refused: the issuer is not trusted.
      [{ IDE_OIDC_ISSUER: provider, IDE_OIDC_CLIENT_ID: 'ide' }, /IDE_OIDC_ISSUER https:\/\/login\.example\.com\/realms\/acme is not among AUTH_ISSUERS/],
      // Plain http to a provider elsewhere: codes and tokens in clear.
      [{ AUTH_ISSUERS: trusted, IDE_OIDC_ISSUER: 'http://login.example.com/realms/acme', IDE_OIDC_CLIENT_ID: 'ide' }, /must be https \(http only on a loopback address\)/],
      [{ AUTH_ISSUERS: trusted, IDE_OIDC_ISSUER: 'https://user:secret@login.example.com/', IDE_OIDC_CLIENT_ID: 'ide' }, /must not carry credentials/],
      [{ AUTH_ISSUERS: trusted, IDE_OIDC_ISSUER: 'not a url', IDE_OIDC_CLIENT_ID: 'ide' }, /IDE_OIDC_ISSUER is not a URL/],
      [{ AUTH_ISSUERS: trusted, IDE_OIDC_ISSUER: provider }, /IDE_OIDC_CLIENT_ID must be set/],
      [{ IDE_OIDC_CLIENT_ID: 'ide' }, /IDE_OIDC_CLIENT_ID is set without IDE_OIDC_ISSUER/],
      [{ AUTH_ISSUERS: trusted, IDE_OIDC_ISSUER: provider, IDE_OIDC_CLIENT_ID: 'ide', IDE_OIDC_SCOPE: 'profile' }, /IDE_OIDC_SCOPE must include openid/],
      [{ AUTH_ISSUERS: trusted, IDE_OIDC_ISSUER: provider, IDE_OIDC_CLIENT_ID: 'ide', IDE_OIDC_RESOURCE: 'data-mesh' }, /IDE_OIDC_RESOURCE must be an absolute URI/],
    ];
    for (const [env, message] of cases) expect(() => gatewayConfigFromEnv(env), JSON.stringify(env)).toThrow(message);
  });
});

describe('the registry API configuration', () => {
  it('is on with the governance group as admin by default, takes roles, and turns off', () => {
    expect(gatewayConfigFromEnv({}).registryApi).toEqual({ governanceRoles: ['admin'] });
    expect(gatewayConfigFromEnv({ REGISTRY_GOVERNANCE_ROLES: 'governance, steward' }).registryApi).toEqual({ governanceRoles: ['governance', 'steward'] });
    expect(gatewayConfigFromEnv({ REGISTRY_API: 'off' }).registryApi).toBeNull();
  });

  it('refuses a setting it does not know, and a governance group of no role', () => {
    expect(() => gatewayConfigFromEnv({ REGISTRY_API: 'maybe' })).toThrow(new GatewayConfigError('REGISTRY_API must be on or off, got "maybe".'));
    expect(() => gatewayConfigFromEnv({ REGISTRY_GOVERNANCE_ROLES: ' , ' })).toThrow(new GatewayConfigError('REGISTRY_GOVERNANCE_ROLES must name at least one role.'));
  });
});
