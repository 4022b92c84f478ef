/**
 * How the gateway calls a subgraph: forwards the request id and the caller's token, and turns a failed fetch into a coded
 * error that names the subgraph but never its URL, status text or response body (those go to the
 * log, under the request id).
 *
 * A subgraph that refuses the request itself (HTTP 4xx with a GraphQL error from the catalogue, as
 * when a custom scalar such as LocalDate rejects a value the gateway cannot check) keeps its code and
 * message: that error was raised on purpose for the client.
 */
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import { codedError, isErrorCode } from '../policy/errors.js';
import type { Metrics } from '../policy/metrics.js';
import { REQUEST_ID_HEADER, type RequestIdContext } from '../policy/request-id.js';

export interface SubgraphDataSourceOptions {
  readonly name: string;
  readonly url: string;
  readonly log: Logger;
  readonly metrics: Metrics;
}

type GatewayRequestContext = Partial<RequestIdContext> & { readonly authorization?: string | undefined };

type FetcherResponse = Parameters<RemoteGraphQLDataSource['errorFromResponse']>[0];

/** Marks an error that the subgraph raised on purpose, to pass on as it is. */
class SubgraphRefusal extends GraphQLError {}

export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayRequestContext> {
  readonly #name: string;
  readonly #log: Logger;
  readonly #metrics: Metrics;

  constructor({ name, url, log, metrics }: SubgraphDataSourceOptions) {
    super({ url });
    this.#name = name;
    this.#log = log;
    this.#metrics = metrics;
  }

  override async process(options: GraphQLDataSourceProcessOptions<GatewayRequestContext>) {
    const started = performance.now();
    const observe = (outcome: string) =>
      this.#metrics.subgraphFetchSeconds.observe({ subgraph: this.#name, outcome }, (performance.now() - started) / 1000);
    try {
      const response = await super.process(options);
      observe(response.errors?.length ? 'errors' : 'ok');
      return response;
    } catch (error) {
      observe('failed');
      throw error;
    }
  }

  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayRequestContext>): void {
    if (context.requestId) request.http?.headers.set(REQUEST_ID_HEADER, context.requestId);
    // Zero trust: each subgraph verifies the caller's token itself.
    if (context.authorization) request.http?.headers.set('authorization', context.authorization);
  }

  override async errorFromResponse(response: FetcherResponse): Promise<GraphQLError> {
    const body: unknown = await this.parseBody(response).catch(() => null);
    const first = (body as { errors?: { message?: unknown; extensions?: { code?: unknown } }[] } | null)?.errors?.[0];
    if (response.status >= 400 && response.status < 500 && typeof first?.message === 'string' && isErrorCode(first.extensions?.code)) {
      return new SubgraphRefusal(first.message, { extensions: { code: first.extensions.code, serviceName: this.#name } });
    }
    return new GraphQLError(`HTTP ${response.status}`, { extensions: { status: response.status, body } });
  }

  override didEncounterError(
    error: Error,
    _fetchRequest: unknown,
    fetchResponse: { status: number } | undefined,
    context?: GatewayRequestContext,
  ): void {
    if (error instanceof SubgraphRefusal) throw error;
    this.#log.error(
      { subgraph: this.#name, requestId: context?.requestId, status: fetchResponse?.status, err: error },
      'subgraph fetch failed',
    );
    const extensions = { serviceName: this.#name };
    throw fetchResponse
      ? codedError(
          'SUBGRAPH_BAD_RESPONSE',
          `The ${this.#name} subgraph answered with an error (HTTP ${fetchResponse.status}).`,
          extensions,
        )
      : codedError('SUBGRAPH_UNAVAILABLE', `The ${this.#name} subgraph could not be reached.`, extensions);
  }
}
