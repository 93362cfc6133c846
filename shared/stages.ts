/**
 * The deployment stages and the defaults each one picks, defined once: the CDK stage settings
 * (infra/stage.ts) hand them to the functions and the queues, and the configuration
 * (shared/config.ts) falls back to them when a variable is not set. Production keeps money
 * conservative unless told otherwise.
 */

export const stages = ['dev', 'prod'] as const;
export type Stage = (typeof stages)[number];

export interface StageDefaults {
  /** `POST /v1/account/top-ups` (stands in for a payment provider). */
  selfServiceTopUps: boolean;
  /** Credits granted at sign-up. */
  signupBonus: number;
  /** Origins allowed by CORS on the API and the buckets' presigned uploads. */
  corsOrigins: string[];
  /** How many times a queue message is received before it goes to its dead-letter queue. */
  maxReceiveCount: number;
}

export const stageDefaults: Record<Stage, StageDefaults> = {
  dev: {
    selfServiceTopUps: true,
    signupBonus: 100,
    corsOrigins: ['http://localhost:3000', 'http://localhost:5173'],
    maxReceiveCount: 3,
  },
  prod: { selfServiceTopUps: false, signupBonus: 0, corsOrigins: [], maxReceiveCount: 5 },
};
