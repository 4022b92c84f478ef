/**
 * How the gateway calls a subgraph: forwards the request id, and turns a failed fetch into a coded
 * error that names the subgraph but never its URL, status text or response body (those go to the
 * log, under the request id).
 */
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { Logger } from 'pino';
import { codedError } from '../policy/errors.js';
import { REQUEST_ID_HEADER, type RequestIdContext } from '../policy/request-id.js';

export interface SubgraphDataSourceOptions {
  readonly name: string;
  readonly url: string;
  readonly log: Logger;
}

type GatewayRequestContext = Partial<RequestIdContext>;

export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayRequestContext> {
  readonly #name: string;
  readonly #log: Logger;

  constructor({ name, url, log }: SubgraphDataSourceOptions) {
    super({ url });
    this.#name = name;
    this.#log = log;
  }

  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayRequestContext>): void {
    if (context.requestId) request.http?.headers.set(REQUEST_ID_HEADER, context.requestId);
  }

  override didEncounterError(
    error: Error,
    _fetchRequest: unknown,
    fetchResponse: { status: number } | undefined,
    context?: GatewayRequestContext,
  ): void {
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
