/** The kit's version says which policy spec it enforces. */
import { describe, expect, it } from 'vitest';
import { KIT_VERSION, POLICY_SPEC_URL } from './index.js';

describe('the platform kit', () => {
  it('has the major and minor version of the policy spec it enforces', () => {
    const [, major, minor] = /^(\d+)\.(\d+)\.\d+$/.exec(KIT_VERSION) ?? [];
    expect(major).toBeDefined();
    expect(POLICY_SPEC_URL).toMatch(new RegExp(`/policy/v${major}\\.${minor}$`));
  });
});
