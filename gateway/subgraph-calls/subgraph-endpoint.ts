/** A subgraph as the gateway knows it: by name and URL only (never by its code). */
export interface SubgraphEndpoint {
  /** The subgraph's name in the supergraph. */
  readonly name: string;
  /** Its GraphQL endpoint. */
  readonly url: string;
}
