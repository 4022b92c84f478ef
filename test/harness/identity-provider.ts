/**
 * A real OpenID Connect provider for tests (the `oidc-provider` package, on a free loopback port):
 * one public client (the IDE: authorization code with PKCE, refresh tokens, RP-initiated logout),
 * JWT access tokens for the mesh's API (resource indicator `urn:datamesh:api`, audience `data-mesh`) that
 * carry the account's roles and regions, and the package's development login and consent pages.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration } from 'oidc-provider';

export interface TestAccount {
  readonly roles: readonly string[];
  readonly regions: readonly string[];
}

export interface TestIdentityProvider {
  readonly issuer: string;
  readonly jwksUri: string;
  /** Grants the provider made, by grant type (`authorization_code`, `refresh_token`). */
  readonly grants: string[];
  stop(): Promise<void>;
}

export async function startIdentityProvider(options: {
  readonly clientId: string;
  /** The IDE's address (`<gateway>/ide/`): its redirect and post-logout redirect URI. */
  readonly redirectUri: string;
  readonly accounts: Readonly<Record<string, TestAccount>>;
  /** Access token lifetime in seconds (short, so that a test sees the IDE renew it). */
  readonly accessTokenSeconds: number;
}): Promise<TestIdentityProvider> {
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const grants: string[] = [];
  const configuration: Configuration = {
    clients: [
      {
        client_id: options.clientId,
        token_endpoint_auth_method: 'none',
        application_type: 'web',
        redirect_uris: [options.redirectUri],
        post_logout_redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [{ ...(privateKey.export({ format: 'jwk' }) as Record<string, string>), kid: 'test-idp-1', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    async findAccount(_ctx, id) {
      if (!options.accounts[id]) return undefined;
      return { accountId: id, claims: async () => ({ sub: id }) };
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:datamesh:api',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'openid offline_access', audience: 'data-mesh', accessTokenTTL: options.accessTokenSeconds, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
      },
    },
    // The account's roles and regions, as claims of the access token the mesh verifies.
    async extraTokenClaims(_ctx, token) {
      const account = 'accountId' in token && typeof token.accountId === 'string' ? options.accounts[token.accountId] : undefined;
      return account ? { roles: [...account.roles], regions: [...account.regions] } : undefined;
    },
    // A refresh token for every client allowed the grant (the package asks for a consent prompt otherwise).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // The IDE calls discovery and the token endpoint from the browser.
    clientBasedCORS: () => true,
    ttl: { AccessToken: options.accessTokenSeconds },
  };
  const provider = new Provider(issuer, configuration);
  provider.on('grant.success', (ctx) => grants.push(String(ctx.oidc.params?.grant_type)));
  server.on('request', provider.callback());
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    grants,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
