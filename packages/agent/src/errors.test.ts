import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TokenError } from './link/auth.js';
import { ResyncNeeded } from './mirror/applier/applier.js';
import { ConfinementError } from './node/confine.js';
import { AGENT_ERROR_CODES, AgentError, codeOf, stepError } from './node/errors.js';

describe('the error table', () => {
  it('is the one the README lists, code for code', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const listed = [...readme.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(AGENT_ERROR_CODES).sort());
  });

  it('is shared by every error class of the agent', () => {
    for (const err of [
      new TokenError('t: too short'),
      new ResyncNeeded('a.txt: basis differs'),
      new ConfinementError('d/x', 'd/x: parent d is a symlink', 'parent'),
    ]) {
      expect(err).toBeInstanceOf(AgentError);
      expect(Object.keys(AGENT_ERROR_CODES)).toContain(err.code);
    }
    expect(new ResyncNeeded('x').code).toBe('ERR_BASIS_MISMATCH');
  });

  it('names the path and the step of a durable step, keeping the cause', () => {
    const cause = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const err = stepError('ERR_LAND', 'www/a.txt', 'renaming into place', cause);
    expect(err.message).toBe('www/a.txt: renaming into place: ENOSPC: no space left on device');
    expect(err.code).toBe('ERR_LAND');
    expect(err.cause).toBe(cause);
    expect(codeOf(cause)).toBe('ENOSPC');
    expect(codeOf('not an error')).toBeUndefined();
  });
});
