/**
 * The mesh's domains, for a command line: a manifest that cannot be read, or a module that declares
 * no domain, ends the command with its reason (exit 1, a configuration that cannot start), not a
 * stack trace.
 */
export async function meshDomains(): Promise<typeof import('./domains.js')> {
  try {
    return await import('./domains.js');
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
