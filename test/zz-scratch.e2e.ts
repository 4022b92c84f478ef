import { readFile } from 'node:fs/promises';
import { it } from 'vitest';
import { startTestMesh } from './harness/mesh.js';
it('probe', async () => {
  const mesh = await startTestMesh();
  try {
    const sup = await readFile(mesh.supergraphPath, 'utf8');
    const api = await readFile(mesh.apiSchemaPath, 'utf8');
    console.log('SUP', sup.split('\n').filter((l) => /scalar (LocalDate|DateTime)/.test(l)).join(' | '));
    console.log('API', api.split('\n').filter((l) => /scalar (LocalDate|DateTime)/.test(l)).join(' | '));
  } finally { await mesh.stop(); }
});
