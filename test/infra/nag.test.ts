/**
 * The AwsSolutions pack of cdk-nag over the app as `cdk synth` builds it. cdk-nag 3 is a policy
 * validation plugin: at synth, CDK runs it, writes what it reports to validation-report.json in the
 * cloud assembly and (outside the CLI's process mode) throws when any violation is an error.
 * Acknowledged findings are dropped by cdk-nag itself, so whatever the report holds is unacknowledged.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type App, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../infra/app.ts';

interface Violation {
  rule: string;
  severity: string;
  constructPaths: string[];
}

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    violations: { ruleName: string; severity: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
}

// A synth takes seconds alone and far longer beside other test processes: give each test the time.
vi.setConfig({ testTimeout: 180_000 });

const outdirs: string[] = [];
afterAll(() => {
  for (const outdir of outdirs) rmSync(outdir, { recursive: true, force: true });
});

/** Builds the app as the CLI does (bundling skipped), lets `change` alter it, synthesizes it and reads the report. */
function nagReport(stage: 'dev' | 'prod', change: (built: ReturnType<typeof buildApp>) => void = () => {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'credit-predictions-nag-'));
  outdirs.push(outdir);
  const built = buildApp({
    context: {
      stage,
      'aws:cdk:bundling-stacks': [],
      // A prod synth needs someone to receive its alarms.
      ...(stage === 'prod' ? { alarmEmail: 'ops@example.com' } : {}),
    },
    outdir,
  });
  change(built);
  let synthError: unknown;
  try {
    built.app.synth();
  } catch (error) {
    synthError = error;
  }
  const reportFile = join(outdir, 'validation-report.json');
  const report: ValidationReport = existsSync(reportFile)
    ? JSON.parse(readFileSync(reportFile, 'utf8'))
    : { pluginReports: [] };
  const violations: Violation[] = report.pluginReports
    .filter((plugin) => plugin.pluginName === 'AwsSolutions')
    .flatMap((plugin) =>
      plugin.violations.map((violation) => ({
        rule: violation.ruleName,
        severity: violation.severity,
        constructPaths: violation.violatingConstructs.map((construct) => construct.constructPath),
      })),
    );
  // A synth that failed for another reason than the pack's findings must not pass as "no findings".
  if (synthError && violations.length === 0) throw synthError;
  return { violations, errors: violations.filter((v) => v.severity === 'error'), synthError, app: built.app };
}

function acknowledgements(app: App): { path: string; id: string; reason: unknown }[] {
  return app.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, unknown>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason,
        })),
      ),
  );
}

describe.each(['dev', 'prod'] as const)('cdk-nag AwsSolutions over the %s app', (stage) => {
  it('reports no unacknowledged error', () => {
    const { errors, synthError } = nagReport(stage);
    expect(errors).toEqual([]);
    expect(synthError).toBeUndefined();
  });

  it('has a written reason for every acknowledgement', () => {
    const { app } = nagReport(stage);
    const all = acknowledgements(app);
    expect(all.length).toBeGreaterThan(0);
    for (const { path, id, reason } of all) {
      expect(typeof reason, `${path} ${id}`).toBe('string');
      expect(String(reason).trim().length, `${path} ${id}`).toBeGreaterThanOrEqual(40);
    }
  });
});

describe('the cdk-nag check itself', () => {
  it('fails the synth and names the resource when a construct breaks a rule', () => {
    const { errors, synthError } = nagReport('dev', ({ stateless }) => {
      new sqs.Queue(stateless, 'QueueWithoutTlsOrDeadLetterQueue');
    });
    expect(synthError).toBeInstanceOf(Error);
    expect(errors).toEqual(
      expect.arrayContaining([
        {
          rule: 'AwsSolutions-SQS3',
          severity: 'error',
          constructPaths: ['CreditPredictions-dev-stateless/QueueWithoutTlsOrDeadLetterQueue/Resource'],
        },
        {
          rule: 'AwsSolutions-SQS4',
          severity: 'error',
          constructPaths: ['CreditPredictions-dev-stateless/QueueWithoutTlsOrDeadLetterQueue/Resource'],
        },
      ]),
    );
  });

  it('reports a grant wildcard on a function whose grants did not acknowledge it', () => {
    const { errors } = nagReport('dev', ({ stateful, stateless }) => {
      stateful.table.grantReadData(stateless.functions.public);
    });
    expect(errors).toEqual([
      {
        // The table's ARN reaches the stateless stack as an import of the stateful stack's export.
        rule: expect.stringMatching(
          /^AwsSolutions-IAM5\[Resource::CreditPredictions-dev-stateful:ExportsOutput\w*Table\w*\/index\/\*\]$/,
        ),
        severity: 'error',
        constructPaths: ['CreditPredictions-dev-stateless/PublicFunction/ServiceRole/DefaultPolicy/Resource'],
      },
    ]);
  });
});
