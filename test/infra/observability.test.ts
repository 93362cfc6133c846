/**
 * What the operators get from the stateless stack: one dashboard, the alarms that page them (all on
 * one SNS topic that only takes TLS), optional X-Ray tracing and the reconciler's schedule.
 * Synthesized through `buildApp` with bundling skipped, as stacks.test.ts does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { METRICS_NAMESPACE } from '../../infra/observability.ts';
import { functionNames, functions } from '../../shared/api/functions.ts';

type Json = Record<string, any>;

const outdirs: string[] = [];
afterAll(() => {
  for (const outdir of outdirs) rmSync(outdir, { recursive: true, force: true });
});

function synthesize(context: Record<string, unknown> = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'credit-predictions-observability-'));
  outdirs.push(outdir);
  const built = buildApp({ context: { stage: 'dev', 'aws:cdk:bundling-stacks': [], ...context }, outdir });
  return {
    ...built,
    stateful: Template.fromStack(built.stateful),
    template: Template.fromStack(built.stateless),
  };
}

const cache = new Map<string, ReturnType<typeof synthesize>>();
/** The default app, and one with `-c tracing=true -c alarmEmail=x@example.com`. */
function app(variant: 'default' | 'options') {
  let built = cache.get(variant);
  if (!built) {
    built = synthesize(variant === 'default' ? {} : { tracing: 'true', alarmEmail: 'x@example.com' });
    cache.set(variant, built);
  }
  return built;
}

function logicalId(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}

function alarms(template: Template): [string, Json][] {
  return Object.entries(template.findResources('AWS::CloudWatch::Alarm')) as [string, Json][];
}

/** The value the stateful stack exports under the name an `Fn::ImportValue` imports. */
function exportOf(stateful: Template, importValue: unknown): unknown {
  const name = (importValue as { 'Fn::ImportValue'?: string })['Fn::ImportValue'];
  const outputs = Object.values(stateful.toJSON().Outputs ?? {}) as {
    Value: unknown;
    Export?: { Name: string };
  }[];
  return outputs.find((output) => output.Export?.Name === name)?.Value;
}

describe('the dashboard', () => {
  it('is one CloudWatch dashboard showing the API, the custom metrics and the dead-letter queues', () => {
    const { template, stateful, stateless } = app('default');
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as Json[];
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]?.Properties.DashboardBody);
    // The API's own metrics, keyed by its id.
    expect(body).toContain('AWS/ApiGateway');
    expect(body).toContain(JSON.stringify({ Ref: logicalId(stateless.api) }));
    for (const metric of ['Count', '5xx', 'Latency']) expect(body).toContain(`\\"${metric}\\"`);
    // The service's EMF metrics.
    expect(METRICS_NAMESPACE).toBe('CreditPredictions');
    for (const metric of ['Predictions', 'PredictionFailures', 'CreditsCharged', 'ReconciliationMismatches'])
      expect(body).toContain(`\\"CreditPredictions\\",\\"${metric}\\"`);
    // Every dead-letter queue, by the name the stateful stack exports.
    const dlqImports = [
      ...body.matchAll(/"Fn::ImportValue":"([^"]+DeadLetterQueue[^"]+QueueName[^"]*)"/g),
    ].map((m) => m[1]);
    const expected = ['ModelDeadLetterQueue', 'BatchDeadLetterQueue', 'NotificationDeadLetterQueue'];
    for (const queue of expected) {
      const imported = dlqImports.find((name) => name?.includes(queue));
      expect(imported, `the dashboard shows the ${queue}`).toBeDefined();
      expect(exportOf(stateful, { 'Fn::ImportValue': imported })).toEqual({
        'Fn::GetAtt': [expect.stringMatching(new RegExp(`^${queue}`)), 'QueueName'],
      });
    }
    expect(body).toContain('Dead-letter queues');
  });
});

describe('the alarms', () => {
  it('all notify one SNS topic, when they fire and when they clear', () => {
    const { template } = app('default');
    const topics = Object.keys(template.findResources('AWS::SNS::Topic'));
    expect(topics).toHaveLength(1);
    const topic = { Ref: topics[0] };
    const all = alarms(template);
    expect(all.length).toBeGreaterThan(0);
    for (const [id, alarm] of all) {
      expect(alarm.Properties.AlarmActions, id).toEqual([topic]);
      expect(alarm.Properties.OKActions, id).toEqual([topic]);
      expect(alarm.Properties.TreatMissingData, id).toBe('notBreaching');
    }
  });

  it('send to a topic that refuses publishing without TLS', () => {
    const { template } = app('default');
    const [topicId] = Object.keys(template.findResources('AWS::SNS::Topic'));
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Principal: '*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('watch the API 5xx rate as metric math over requests and 5xx errors', () => {
    const { template, stateless } = app('default');
    const api = { Ref: logicalId(stateless.api) };
    const rate = alarms(template).filter(([, a]) =>
      (a.Properties.Metrics ?? []).some((m: Json) => typeof m.Expression === 'string'),
    );
    expect(rate).toHaveLength(1);
    const [, alarm] = rate[0] as [string, Json];
    expect(alarm.Properties.ComparisonOperator).toBe('GreaterThanThreshold');
    expect(alarm.Properties.Threshold).toBeGreaterThan(0);
    const metrics = alarm.Properties.Metrics as Json[];
    const expression = metrics.find((m) => m.Expression);
    expect(expression?.ReturnData).toBe(true);
    const inputs = metrics.filter((m) => m.MetricStat);
    expect(inputs.map((m) => m.MetricStat.Metric.MetricName).sort()).toEqual(['5xx', 'Count']);
    for (const input of inputs) {
      expect(input.ReturnData).toBe(false);
      expect(input.MetricStat.Metric.Namespace).toBe('AWS/ApiGateway');
      expect(input.MetricStat.Metric.Dimensions).toEqual([{ Name: 'ApiId', Value: api }]);
      expect(expression?.Expression).toContain(input.Id);
    }
  });

  it('watch the API p95 latency', () => {
    const { template, stateless } = app('default');
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: 'Latency',
      ExtendedStatistic: 'p95',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: logicalId(stateless.api) } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: Match.anyValue(),
    });
  });

  it('fire on any visible message in each dead-letter queue', () => {
    const { template, stateful } = app('default');
    const dlqAlarms = alarms(template).filter(
      ([, a]) =>
        a.Properties.Namespace === 'AWS/SQS' &&
        a.Properties.MetricName === 'ApproximateNumberOfMessagesVisible',
    );
    const queues = dlqAlarms.map(([, a]) => {
      expect(a.Properties.Threshold).toBe(0);
      expect(a.Properties.ComparisonOperator).toBe('GreaterThanThreshold');
      const dimension = (a.Properties.Dimensions as Json[]).find((d) => d.Name === 'QueueName');
      const exported = exportOf(stateful, dimension?.Value) as { 'Fn::GetAtt': [string, string] };
      expect(exported['Fn::GetAtt'][1]).toBe('QueueName');
      return exported['Fn::GetAtt'][0];
    });
    const deadLetterQueues = Object.entries(stateful.findResources('AWS::SQS::Queue'))
      .filter(([id]) => id.includes('DeadLetterQueue'))
      .map(([id]) => id);
    expect(deadLetterQueues).toHaveLength(3);
    expect(queues.sort()).toEqual(deadLetterQueues.sort());
    // Only the dead-letter queues, never the work queues (a backlog there is normal).
    const workQueues = Object.values(stateful.findResources('AWS::SQS::Queue')).filter(
      (q: Json) => q.Properties.RedrivePolicy,
    );
    expect(workQueues).toHaveLength(3);
  });

  it('fire when any function is throttled', () => {
    const { template, stateless } = app('default');
    const throttled = alarms(template)
      .filter(([, a]) => a.Properties.Namespace === 'AWS/Lambda' && a.Properties.MetricName === 'Throttles')
      .map(([, a]) => {
        expect(a.Properties.Threshold).toBe(0);
        expect(a.Properties.ComparisonOperator).toBe('GreaterThanThreshold');
        return (a.Properties.Dimensions as Json[]).find((d) => d.Name === 'FunctionName')?.Value.Ref;
      });
    expect(throttled.sort()).toEqual(
      functionNames.map((name) => logicalId(stateless.functions[name])).sort(),
    );
  });

  it('fire on any reconciliation mismatch reported by the reconciler', () => {
    const { template } = app('default');
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'CreditPredictions',
      MetricName: 'ReconciliationMismatches',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      // The dimensions Powertools Metrics puts on the reconciler's EMF records (service and stage):
      // any other set would name a metric nobody writes, and the alarm could never fire.
      Dimensions: [
        { Name: 'service', Value: 'credit-predictions' },
        { Name: 'stage', Value: 'dev' },
      ],
    });
  });
});

describe('alarm email', () => {
  it('subscribes no one by default', () => {
    app('default').template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('subscribes the -c alarmEmail address to the alarm topic', () => {
    const { template } = app('options');
    const [topicId] = Object.keys(template.findResources('AWS::SNS::Topic'));
    template.resourceCountIs('AWS::SNS::Subscription', 1);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'x@example.com',
      TopicArn: { Ref: topicId },
    });
  });
});

describe('tracing', () => {
  const lambdaFunctions = (template: Template) =>
    Object.values(template.findResources('AWS::Lambda::Function')) as Json[];

  it('is off by default', () => {
    const all = lambdaFunctions(app('default').template);
    expect(all.length).toBeGreaterThanOrEqual(functionNames.length);
    for (const fn of all) expect(fn.Properties.TracingConfig).toBeUndefined();
    const { stateless, template } = app('default');
    for (const name of functionNames) {
      const resource = template.toJSON().Resources[logicalId(stateless.functions[name])] as Json;
      expect(resource.Properties.Environment.Variables.POWERTOOLS_TRACE_DISABLED).toBe('true');
    }
  });

  it('-c tracing=true makes every function trace actively', () => {
    const { stateless, template } = app('options');
    for (const name of functionNames) {
      const resource = template.toJSON().Resources[logicalId(stateless.functions[name])] as Json;
      expect(resource.Properties.TracingConfig, name).toEqual({ Mode: 'Active' });
      expect(resource.Properties.Environment.Variables.POWERTOOLS_TRACE_DISABLED).toBe('false');
    }
  });
});

describe('the scheduled reconciler', () => {
  it('runs from an EventBridge rule on a rate schedule that targets its function', () => {
    const { template, stateless } = app('default');
    const definition = functions.reconciler;
    expect(definition.kind).toBe('scheduled');
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as Json[];
    const reconcilerArn = { 'Fn::GetAtt': [logicalId(stateless.functions.reconciler), 'Arn'] };
    const rule = rules.find((r) =>
      (r.Properties.Targets as Json[]).some((t) => JSON.stringify(t.Arn) === JSON.stringify(reconcilerArn)),
    );
    expect(rule).toBeDefined();
    expect(rule?.Properties.ScheduleExpression).toMatch(/^rate\(\d+ (minute|minutes|hour|hours)\)$/);
    const minutes =
      Number(/rate\((\d+)/.exec(rule?.Properties.ScheduleExpression)?.[1]) *
      (/hour/.test(rule?.Properties.ScheduleExpression) ? 60 : 1);
    expect(minutes).toBe(definition.everyMinutes);
    expect(rule?.Properties.State).toBe('ENABLED');
    // EventBridge may invoke it.
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: reconcilerArn,
    });
  });
});
