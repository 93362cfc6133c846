/** Deployment stages and the defaults each one picks; `cdk deploy -c stage=prod` selects one. */
import { RemovalPolicy } from 'aws-cdk-lib';
import { type Stage, type StageDefaults, stageDefaults, stages } from '../shared/stages.ts';

export type StageName = Stage;
export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** The stage's defaults that the functions share (shared/stages.ts), and what only the stacks use. */
export interface StageSettings extends StageDefaults {
  stage: StageName;
  /** Production keeps tables and buckets when a stack is deleted. */
  removalPolicy: RemovalPolicy;
  logRetentionDays: number;
  /** The functions' `LOG_LEVEL`: dev logs the detail needed to follow a request end to end. */
  logLevel: LogLevel;
  /**
   * X-Ray active tracing of the functions: on in prod, where a slow or failed request has to be
   * followed across the functions and AWS calls afterwards; off in dev. `-c tracing=true|false`
   * overrides either.
   */
  tracing: boolean;
  /** Gets the alarm notifications (`-c alarmEmail=ops@example.com`). */
  alarmEmail?: string | undefined;
  /**
   * Whether each function gets the reserved concurrency of the function list (`reservedConcurrency`
   * in shared/api/functions.ts). Reservations come out of the account's concurrency limit (1000 by
   * default), and Lambda refuses any that would leave fewer than 100 executions unreserved, so a new
   * or sandbox account (often limited to 10) cannot take them: dev leaves them off, prod turns them
   * on; `-c reservedConcurrency=true|false` overrides either. The queue event sources' maximum
   * concurrency applies in every stage, since it reserves nothing.
   */
  reservedConcurrency: boolean;
}

/**
 * Alarms nobody receives protect nothing: a prod stage needs a subscriber to its alarm topic. The
 * address gets a confirmation email from SNS, which must be accepted before anything arrives.
 */
export function checkAlarmSubscriber(settings: StageSettings): void {
  const email = settings.alarmEmail;
  if (email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    throw new Error(`-c alarmEmail=${email} is not an email address.`);
  }
  if (settings.stage === 'prod' && !email) {
    throw new Error(
      'A prod deployment needs someone to receive its alarms: add -c alarmEmail=ops@example.com ' +
        '(SNS emails that address a confirmation link to accept once).',
    );
  }
}

export function stageSettings(
  stage: string,
  overrides: {
    corsOrigins?: string[];
    tracing?: boolean;
    alarmEmail?: string | undefined;
    reservedConcurrency?: boolean | undefined;
  } = {},
): StageSettings {
  if (!isStage(stage)) throw new Error(`Unknown stage "${stage}": use ${stages.join(' or ')}.`);
  const base: Omit<StageSettings, 'tracing' | 'alarmEmail'> =
    stage === 'prod'
      ? {
          ...stageDefaults.prod,
          stage,
          removalPolicy: RemovalPolicy.RETAIN,
          logRetentionDays: 90,
          logLevel: 'INFO',
          reservedConcurrency: true,
        }
      : {
          ...stageDefaults.dev,
          stage,
          removalPolicy: RemovalPolicy.DESTROY,
          logRetentionDays: 14,
          logLevel: 'DEBUG',
          reservedConcurrency: false,
        };
  return {
    ...base,
    ...(overrides.corsOrigins ? { corsOrigins: overrides.corsOrigins } : {}),
    ...(overrides.reservedConcurrency !== undefined
      ? { reservedConcurrency: overrides.reservedConcurrency }
      : {}),
    tracing: overrides.tracing ?? stage === 'prod',
    alarmEmail: overrides.alarmEmail,
  };
}

function isStage(name: string): name is Stage {
  return (stages as readonly string[]).includes(name);
}
