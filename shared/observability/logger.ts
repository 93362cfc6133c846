import { Logger } from '@aws-lambda-powertools/logger';
import { config } from '../config.ts';

/**
 * The structured JSON logger shared by every function. Request bodies, passwords, tokens and model
 * inputs are never logged; log the ids that let an operator follow a request instead.
 */
export const logger = new Logger({
  serviceName: config().serviceName,
  logLevel: config().logLevel,
  persistentKeys: { stage: config().stage },
});
