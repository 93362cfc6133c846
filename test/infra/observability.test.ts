/**
 * What the operators get from the stateless stack: one dashboard, the alarms that page them (all on
 * one SNS topic that only takes TLS), optional X-Ray tracing and the reconciler's schedule.
 * Synthesized through `buildApp` with bundling skipped, as stacks.test.ts does.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import {
  API_THROTTLED_METRIC,
  METRICS_NAMESPACE,
  RECONCILER_HEARTBEAT_METRIC,
  TABLE_OPERATIONS,
} from '../../infra/observability.ts';
import { REPO_ROOT } from '../../infra/paths.ts';
import { functionNames, functions } from '../../shared/api/functions.ts';
import { metricNames } from '../../shared/observability/metric-names.ts';

type Json = Record<string, any>;

// A synth takes seconds alone and far longer beside other test processes: give each test the time.
vi.setConfig({ testTimeout: 180_000 });

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

// The synths the tests share happen here, where a loaded machine gets the hook's longer timeout.
beforeAll(() => {
  app('default');
  app('options');
});

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
      // Missing data is "nothing happened", except for the heartbeat, whose silence is the alarm.
      const heartbeat = alarm.Properties.MetricName === RECONCILER_HEARTBEAT_METRIC;
      expect(alarm.Properties.TreatMissingData, id).toBe(heartbeat ? 'breaching' : 'notBreaching');
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
      (a.Properties.Metrics ?? []).some((m: Json) => m.MetricStat?.Metric.MetricName === '5xx'),
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
      // A queue of the stateful stack comes as an import; the schedule's is in this stack.
      const queueName = (
        dimension?.Value['Fn::ImportValue'] ? exportOf(stateful, dimension.Value) : dimension?.Value
      ) as { 'Fn::GetAtt': [string, string] };
      expect(queueName['Fn::GetAtt'][1]).toBe('QueueName');
      return queueName['Fn::GetAtt'][0];
    });
    const deadLetterQueues = [
      ...Object.keys(stateful.findResources('AWS::SQS::Queue')),
      ...Object.keys(template.findResources('AWS::SQS::Queue')),
    ].filter((id) => id.includes('DeadLetterQueue'));
    expect(deadLetterQueues).toHaveLength(4);
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

  it('fire when any function fails, and when the webhook dispatcher fails often', () => {
    const { template, stateless } = app('default');
    const failing = alarms(template).filter(
      ([, a]) => a.Properties.Namespace === 'AWS/Lambda' && a.Properties.MetricName === 'Errors',
    );
    const byFunction = new Map(
      failing.map(([, a]) => [
        (a.Properties.Dimensions as Json[]).find((d) => d.Name === 'FunctionName')?.Value.Ref as string,
        a.Properties,
      ]),
    );
    expect([...byFunction.keys()].sort()).toEqual(
      functionNames.map((name) => logicalId(stateless.functions[name])).sort(),
    );
    for (const name of functionNames) {
      const properties = byFunction.get(logicalId(stateless.functions[name])) as Json;
      expect(properties.Statistic, name).toBe('Sum');
      expect(properties.ComparisonOperator, name).toBe('GreaterThanThreshold');
      // A receiver that is down fails every delivery attempt; its dead-letter alarm reports it once.
      if (name === 'webhook-dispatcher') {
        expect(properties.Threshold, name).toBeGreaterThan(0);
        expect(properties.Period, name).toBe(900);
      } else {
        expect(properties.Threshold, name).toBe(0);
        expect(properties.Period, name).toBe(300);
      }
    }
  });

  it('fire when the oldest message of a work queue has waited too long', () => {
    const { template, stateful } = app('default');
    const aged = alarms(template).filter(
      ([, a]) =>
        a.Properties.Namespace === 'AWS/SQS' && a.Properties.MetricName === 'ApproximateAgeOfOldestMessage',
    );
    const queues = aged.map(([, a]) => {
      expect(a.Properties.Statistic).toBe('Maximum');
      expect(a.Properties.ComparisonOperator).toBe('GreaterThanThreshold');
      expect(a.Properties.Threshold).toBeGreaterThanOrEqual(15 * 60);
      const dimension = (a.Properties.Dimensions as Json[]).find((d) => d.Name === 'QueueName');
      return (exportOf(stateful, dimension?.Value) as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    });
    const workQueues = Object.entries(stateful.findResources('AWS::SQS::Queue'))
      .filter(([, q]) => (q as Json).Properties.RedrivePolicy)
      .map(([id]) => id);
    expect(queues.sort()).toEqual(workQueues.sort());
  });

  it('fire on DynamoDB throttles and system errors, over every operation the code uses', () => {
    const { template, stateful } = app('default');
    const [tableId] = Object.keys(stateful.findResources('AWS::DynamoDB::GlobalTable'));
    for (const metricName of ['ThrottledRequests', 'SystemErrors']) {
      const [found] = alarms(template).filter(([, a]) =>
        (a.Properties.Metrics ?? []).some((m: Json) => m.MetricStat?.Metric.MetricName === metricName),
      );
      expect(found, metricName).toBeDefined();
      const alarm = (found as [string, Json])[1].Properties;
      expect(alarm.Threshold).toBe(0);
      expect(alarm.ComparisonOperator).toBe('GreaterThanThreshold');
      const inputs = (alarm.Metrics as Json[]).filter((m) => m.MetricStat);
      const operations = inputs.map((m) => {
        const dimensions = m.MetricStat.Metric.Dimensions as Json[];
        const table = dimensions.find((d) => d.Name === 'TableName')?.Value;
        expect(exportOf(stateful, table)).toEqual({ Ref: tableId });
        return dimensions.find((d) => d.Name === 'Operation')?.Value;
      });
      expect(operations.sort()).toEqual([...TABLE_OPERATIONS].sort());
      // Every term is filled, so an operation without data cannot blank out the sum.
      const expression = (alarm.Metrics as Json[]).find((m) => m.Expression)?.Expression as string;
      for (const input of inputs) expect(expression).toContain(`FILL(${input.Id}, 0)`);
    }
  });

  it('fire on a spike of 4xx answers and of 429s, counted from the access log', () => {
    const { template, stateless } = app('default');
    const api = { Ref: logicalId(stateless.api) };
    const [rate] = alarms(template).filter(([, a]) =>
      (a.Properties.Metrics ?? []).some((m: Json) => m.MetricStat?.Metric.MetricName === '4xx'),
    );
    expect(rate).toBeDefined();
    const rateProperties = (rate as [string, Json])[1].Properties;
    expect(rateProperties.ComparisonOperator).toBe('GreaterThanThreshold');
    expect(rateProperties.Threshold).toBeGreaterThan(0);
    // A rate over a minimum of requests, so that two failed sign-ins on a quiet night page no one.
    expect((rateProperties.Metrics as Json[]).find((m) => m.Expression)?.Expression).toMatch(
      /^IF\(requests >= \d+/,
    );

    const stage = template.toJSON().Resources[logicalId(stateless.apiStage)] as Json;
    expect(JSON.parse(stage.Properties.AccessLogSettings.Format)).toMatchObject({
      apiId: '$context.apiId',
      status: '$context.status',
    });
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: stage.Properties.AccessLogSettings.DestinationArn['Fn::GetAtt'][0] },
      FilterPattern: '{ $.status = "429" }',
      MetricTransformations: [
        {
          MetricNamespace: METRICS_NAMESPACE,
          MetricName: API_THROTTLED_METRIC,
          MetricValue: '1',
          Dimensions: [{ Key: 'ApiId', Value: '$.apiId' }],
        },
      ],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: API_THROTTLED_METRIC,
      Dimensions: [{ Name: 'ApiId', Value: api }],
      Statistic: 'Sum',
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('fire when the reconciler stops running: its heartbeat missing counts as breaching', () => {
    const { template } = app('default');
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: RECONCILER_HEARTBEAT_METRIC,
      Dimensions: [
        { Name: 'service', Value: 'credit-predictions' },
        { Name: 'stage', Value: 'dev' },
      ],
      Statistic: 'SampleCount',
      Period: functions.reconciler.everyMinutes * 60,
      EvaluationPeriods: 2,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    // The alarm watches a metric the reconciler writes on every run, whatever it finds: both take
    // its name from shared/observability/metric-names.ts.
    expect(RECONCILER_HEARTBEAT_METRIC).toBe(metricNames.accountsReconciled);
    const handler = readFileSync(join(REPO_ROOT, functions.reconciler.entry), 'utf8');
    expect(handler).toContain('addMetric(metricNames.accountsReconciled,');
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
  it('subscribes no one by default in dev', () => {
    app('default').template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('is required for prod: the synth fails with a message that names -c alarmEmail', () => {
    expect(() => synthesize({ stage: 'prod' })).toThrow(
      /prod deployment needs someone to receive its alarms: add -c alarmEmail=/,
    );
    expect(() => synthesize({ stage: 'prod', alarmEmail: 'ops' })).toThrow(/not an email address/);
    const prod = synthesize({ stage: 'prod', alarmEmail: 'ops@example.com' });
    prod.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
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

  it('is off by default in dev', () => {
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

  it('is on in prod, where -c tracing=false turns it off', () => {
    const traced = (context: Record<string, unknown>) => {
      const { stateless, template } = synthesize({
        stage: 'prod',
        alarmEmail: 'ops@example.com',
        ...context,
      });
      return functionNames.map((name) => {
        const resource = template.toJSON().Resources[logicalId(stateless.functions[name])] as Json;
        return [
          resource.Properties.TracingConfig,
          resource.Properties.Environment.Variables.POWERTOOLS_TRACE_DISABLED,
        ];
      });
    };
    for (const [config, disabled] of traced({})) {
      expect(config).toEqual({ Mode: 'Active' });
      expect(disabled).toBe('false');
    }
    for (const [config, disabled] of traced({ tracing: 'false' })) {
      expect(config).toBeUndefined();
      expect(disabled).toBe('true');
    }
  });
});

describe('the scheduled reconciler', () => {
  it('sends what its schedule cannot deliver, and the runs that failed for good, to a dead-letter queue', () => {
    const { template, stateless } = app('default');
    const queue = stateless.scheduleDeadLetterQueues.reconciler;
    expect(queue).toBeDefined();
    const queueArn = { 'Fn::GetAtt': [logicalId(queue as IConstruct), 'Arn'] };
    const reconciler = logicalId(stateless.functions.reconciler);
    const period = functions.reconciler.everyMinutes * 60;
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [reconciler, 'Arn'] },
          DeadLetterConfig: { Arn: queueArn },
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: period },
        }),
      ],
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: reconciler },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: queueArn } },
    });
    // EventBridge may write to it, for this rule only.
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sqs:SendMessage',
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': Match.anyValue() } },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
  });

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
