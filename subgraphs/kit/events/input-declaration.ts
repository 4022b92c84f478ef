/**
 * How a data product declares an input: another domain's data product it is fed by, through its
 * change feed (followed by events/inputs.ts).
 */

/** Another domain's data product that one of this domain's products is fed by. */
export interface ProductInput {
  /** Its address, `<domain>.<product>`: its change feed is followed, and it is this product's input port. */
  readonly product: string;
  /** Why this product reads it (the catalog shows it with the input port). */
  readonly description: string;
  /** The fields of this product's type made from it (its lineage). */
  readonly fields: readonly string[];
  /** The table of this domain its values are kept in (declared `source: 'increments'`, keyed by the input's key). */
  readonly table: string;
  /** The Query connection field listing the input's entities (`first`/`after`, and `filter: { <keyFilter>: [keys] }`). */
  readonly field: string;
  /** Its filter argument that selects entities by key (at most 100 keys a read). */
  readonly keyFilter: string;
  /** What is read of each entity (a GraphQL selection; it must select what `toRow` needs). */
  readonly selection: string;
  /** An entity as read → its row of `table` (every column that is not derived). */
  readonly toRow: (node: any) => Readonly<Record<string, string | number | boolean | null>>;
}
