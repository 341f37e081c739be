import { AgentError } from '../../node/errors.js';

/** A delta's basis is not the mirror's copy of the file: the mirror reconciles by manifest. */
export class ResyncNeeded extends AgentError {
  declare readonly code: 'ERR_BASIS_MISMATCH';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BASIS_MISMATCH', message, options);
    this.name = 'ResyncNeeded';
  }
}

/** An op that cannot be applied as sent (the message names the path). */
export class ApplyError extends AgentError {
  declare readonly code: 'ERR_APPLY';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_APPLY', message, options);
    this.name = 'ApplyError';
  }
}

/**
 * Files rebuilt and verified could not be made durable or put in place. The cause is the
 * failed durable step, which names the path and the step (see `stepError`).
 */
export class LandingError extends AgentError {
  declare readonly code: 'ERR_LAND';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LAND', message, options);
    this.name = 'LandingError';
  }
}
