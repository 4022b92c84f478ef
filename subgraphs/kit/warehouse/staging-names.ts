/**
 * The names of what an incremental load stages in a warehouse (increments.ts), apart so that the
 * dialects, which keep a rejected load's staging aside, need nothing else of it.
 */

/** Where a table's increments are staged: every delivery's rows, numbered. */
export const stagedTableOf = (table: string): string => `_increment_${table}`;
/** The keys a merge touched in a table (inserted, updated or deleted). */
export const changedTableOf = (table: string): string => `_changed_${table}`;
/** The view of a table's rows that increments changed (its SQL quality rules read it). */
export const changedRowsOf = (table: string): string => `_changed_rows_${table}`;
/** A table's rows as they were before a merge changed them (its change events compare with them). */
export const beforeTableOf = (table: string): string => `_before_${table}`;
