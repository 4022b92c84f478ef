/**
 * What a gateway hop costs before any gateway feature, for `npm run bench:pairs`: the floors the
 * gateway's own hop is read against, each served in this process over the same subgraphs.
 *
 * - a bare proxy: Node's HTTP server passing the body to one subgraph through an undici pool and
 *   its answer back (the second round trip and nothing else);
 * - Apollo alone: Apollo Server and Apollo Gateway (the fixed choices) on Node's HTTP server, with
 *   a data source that posts through the same undici pool: no Express, identity, policy, limits,
 *   audit, metrics, signature or request ids;
 * - plain Apollo Gateway as its documentation starts it: `startStandaloneServer` and
 *   `RemoteGraphQLDataSource` (what the peer benchmark's "apollo" runs).
 *
 * They call subgraphs that do not check the gateway's signature (the floors do not sign), and pass
 * on the caller's Authorization header, so each subgraph does the same policy work as for the mesh.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloGateway, RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { Agent, request } from 'undici';

export interface Floor {
  readonly url: string;
  stop(): Promise<void>;
}

interface Forwarded {
  readonly authorization: string | undefined;
}

async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A floor that failed answers 502 (the bench's `answered` then stops the run), or drops the connection mid-answer. */
function failed(res: ServerResponse, error: unknown): void {
  if (res.headersSent) res.destroy();
  else res.writeHead(502, { 'content-type': 'text/plain' }).end(String(error));
}

/** Serves `handle` on Node's HTTP server; `stop` closes the server, then `release`. */
async function serve(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>, release: () => Promise<void>): Promise<Floor> {
  const server = createServer((req, res) => void handle(req, res).catch((error: unknown) => failed(res, error)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await release();
    },
  };
}

/** Node's HTTP server passing each request's body to `target` and its answer back. */
export async function startBareProxy(target: string): Promise<Floor> {
  const agent = new Agent({ keepAliveTimeout: 4_000 });
  return serve(async (req, res) => {
    const answer = await request(target, { method: 'POST', headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' }, body: await bodyOf(req), dispatcher: agent });
    const text = await answer.body.text();
    res.writeHead(answer.statusCode, { 'content-type': 'application/json' });
    res.end(text);
  }, () => agent.close());
}

/** Apollo Server and Apollo Gateway over `supergraphSdl` with nothing else: the fixed choices' own cost. */
export async function startApolloAlone(supergraphSdl: string): Promise<Floor> {
  const agent = new Agent({ keepAliveTimeout: 4_000 });
  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ url }) => ({
      async process({ request: { http: _http, ...operation }, context }: GraphQLDataSourceProcessOptions<Forwarded>): Promise<GatewayGraphQLResponse> {
        const answer = await request(url!, { method: 'POST', headers: { 'content-type': 'application/json', authorization: context.authorization ?? '' }, body: JSON.stringify(operation), dispatcher: agent });
        return JSON.parse(await answer.body.text()) as GatewayGraphQLResponse;
      },
    }),
  });
  const apollo = new ApolloServer<Forwarded>({ gateway });
  await apollo.start();
  return serve(
    async (req, res) => {
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value);
      const body: unknown = JSON.parse((await bodyOf(req)).toString('utf8'));
      const answer = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'POST', headers, search: '', body },
        context: async () => ({ authorization: req.headers.authorization }),
      });
      res.statusCode = answer.status ?? 200;
      for (const [name, value] of answer.headers) res.setHeader(name, value);
      res.end(answer.body.kind === 'complete' ? answer.body.string : '');
    },
    async () => {
      await apollo.stop();
      await agent.close();
    },
  );
}

/** Plain Apollo Gateway as its documentation starts it (standalone server, RemoteGraphQLDataSource). */
export async function startPlainApollo(supergraphSdl: string): Promise<Floor> {
  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource<Forwarded>({
        url,
        willSendRequest({ request: outgoing, context }) {
          if (context.authorization) outgoing.http?.headers.set('authorization', context.authorization);
        },
      }),
  });
  const apollo = new ApolloServer<Forwarded>({ gateway });
  const { url } = await startStandaloneServer(apollo, { listen: { port: 0, host: '127.0.0.1' }, context: async ({ req }) => ({ authorization: req.headers.authorization }) });
  return { url, stop: () => apollo.stop() };
}
