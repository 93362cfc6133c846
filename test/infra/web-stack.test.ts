/**
 * What the web stack promises: a private, encrypted, TLS-only bucket read by CloudFront through an
 * Origin Access Control, the API's paths routed uncached to the HTTP API on the same origin, the
 * app's routes rewritten to index.html, security headers, and no unacknowledged cdk-nag finding.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { stageSettings } from '../../infra/stage.ts';
import { API_PATH_PATTERNS, SPA_REWRITE_FUNCTION, WebStack } from '../../infra/web-stack.ts';

type Json = Record<string, any>;

const outdirs: string[] = [];
afterAll(() => {
  for (const outdir of outdirs) rmSync(outdir, { recursive: true, force: true });
});
const tempDir = (label: string) => {
  const dir = mkdtempSync(join(tmpdir(), `credit-predictions-${label}-`));
  outdirs.push(dir);
  return dir;
};

interface Synthesized {
  built: ReturnType<typeof buildApp>;
  template: Template;
  /** `<rule> <construct path>` of every cdk-nag finding in the web stack. */
  nagFindings: string[];
}

/**
 * Synthesizes the app once per stage, as the CLI does with bundling skipped. A synth that cdk-nag
 * fails still writes the templates and the validation report, so the other checks can run and the
 * nag check can name what it found.
 */
const apps = new Map<string, Synthesized>();
function webApp(stage: 'dev' | 'prod'): Synthesized {
  let app = apps.get(stage);
  if (!app) {
    const outdir = tempDir('web');
    const built = buildApp({
      context: {
        stage,
        'aws:cdk:bundling-stacks': [],
        // A prod synth needs someone to receive its alarms.
        ...(stage === 'prod' ? { alarmEmail: 'ops@example.com' } : {}),
      },
      outdir,
    });
    let synthError: unknown;
    try {
      built.app.synth();
    } catch (error) {
      synthError = error;
    }
    const reportFile = join(outdir, 'validation-report.json');
    const report = existsSync(reportFile)
      ? JSON.parse(readFileSync(reportFile, 'utf8'))
      : { pluginReports: [] };
    const nagFindings = (report.pluginReports as Json[])
      .flatMap((plugin) => plugin.violations as Json[])
      .flatMap((violation) =>
        (violation.violatingConstructs as Json[])
          .filter((c) => String(c.constructPath).startsWith(`${built.web.stackName}/`))
          .map((c) => `${violation.ruleName} ${c.constructPath}`),
      );
    const templateFile = join(outdir, built.web.templateFile);
    if (!existsSync(templateFile)) throw synthError ?? new Error(`No template at ${templateFile}`);
    app = { built, template: Template.fromJSON(JSON.parse(readFileSync(templateFile, 'utf8'))), nagFindings };
    apps.set(stage, app);
  }
  return app;
}

function distributionConfig(template: Template): Json {
  const [distribution] = Object.values(template.findResources('AWS::CloudFront::Distribution')) as Json[];
  return distribution?.Properties.DistributionConfig;
}

describe.each(['dev', 'prod'] as const)('the %s web stack', (stage) => {
  it('keeps the site in a private, encrypted bucket that only takes TLS requests and logs access', () => {
    const { template } = webApp(stage);
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 's3/' }),
    });
    for (const bucket of Object.values(template.findResources('AWS::S3::Bucket')) as Json[]) {
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties.WebsiteConfiguration).toBeUndefined();
    }
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('lets only the distribution read the bucket, through an Origin Access Control', () => {
    const { template } = webApp(stage);
    template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
    template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: Match.objectLike({
        OriginAccessControlOriginType: 's3',
        SigningBehavior: 'always',
        SigningProtocol: 'sigv4',
      }),
    });
    template.resourceCountIs('AWS::CloudFront::CloudFrontOriginAccessIdentity', 0);
    const s3Origin = distributionConfig(template).Origins.find((origin: Json) => origin.S3OriginConfig);
    expect(s3Origin.OriginAccessControlId).toEqual({ 'Fn::GetAtt': [expect.any(String), 'Id'] });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudfront.amazonaws.com' },
            Action: 's3:GetObject',
            Condition: { StringEquals: { 'AWS:SourceArn': Match.anyValue() } },
          }),
        ]),
      },
    });
  });

  it('serves index.html at the root and for the routes of the app, over HTTPS, with security headers', () => {
    const { template } = webApp(stage);
    const config = distributionConfig(template);
    expect(config.DefaultRootObject).toBe('index.html');
    expect(config.CustomErrorResponses).toBeUndefined();
    expect(config.DefaultCacheBehavior.ViewerProtocolPolicy).toBe('redirect-to-https');
    expect(config.DefaultCacheBehavior.FunctionAssociations).toEqual([
      { EventType: 'viewer-request', FunctionARN: expect.anything() },
    ]);
    expect(config.Logging).toEqual(expect.objectContaining({ Prefix: 'cloudfront/' }));
    template.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', {
      ResponseHeadersPolicyConfig: Match.objectLike({
        SecurityHeadersConfig: Match.objectLike({
          ContentSecurityPolicy: {
            ContentSecurityPolicy: Match.stringLikeRegexp("default-src 'self'.*frame-ancestors 'none'"),
            Override: true,
          },
          ContentTypeOptions: { Override: true },
          FrameOptions: { FrameOption: 'DENY', Override: true },
          StrictTransportSecurity: Match.objectLike({ AccessControlMaxAgeSec: 31_536_000 }),
        }),
      }),
    });
  });

  it('routes the API paths, uncached and with the viewer headers except Host, to the HTTP API', () => {
    const { template, built } = webApp(stage);
    const config = distributionConfig(template);
    const behaviors = config.CacheBehaviors as Json[];
    expect(behaviors.map((b) => b.PathPattern).sort()).toEqual([...API_PATH_PATTERNS].sort());
    const apiOrigin = config.Origins.find((origin: Json) => origin.CustomOriginConfig);
    expect(apiOrigin.CustomOriginConfig).toEqual(
      expect.objectContaining({ OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'] }),
    );
    // The host name is cut out of the stateless stack's API endpoint (an import of its export).
    expect(JSON.stringify(apiOrigin.DomainName)).toContain('Fn::ImportValue');
    expect(JSON.stringify(apiOrigin.DomainName)).toContain(built.stateless.stackName);
    for (const behavior of behaviors) {
      expect(behavior.TargetOriginId).toBe(apiOrigin.Id);
      expect(behavior.CachePolicyId).toBe(cloudfront.CachePolicy.CACHING_DISABLED.cachePolicyId);
      expect(behavior.OriginRequestPolicyId).toBe(
        cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER.originRequestPolicyId,
      );
      expect(behavior.AllowedMethods).toEqual(
        expect.arrayContaining(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
      );
      expect(behavior.ViewerProtocolPolicy).toBe('https-only');
    }
  });

  it('deploys the built UI with long caching for hashed assets only, and invalidates index.html', () => {
    const { template } = webApp(stage);
    const deployments = Object.values(template.findResources('Custom::CDKBucketDeployment')) as Json[];
    expect(deployments).toHaveLength(2);
    const assets = deployments.find((d) => d.Properties.Include?.includes('assets/*'));
    const pages = deployments.find((d) => d.Properties.Exclude?.includes('assets/*'));
    expect(assets?.Properties.SystemMetadata['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(pages?.Properties.SystemMetadata['cache-control']).toBe('no-cache');
    expect(pages?.Properties.DistributionPaths).toEqual(['/', '/index.html']);
    for (const deployment of deployments) expect(deployment.Properties.Prune).toBe(false);
  });

  it('has no unacknowledged cdk-nag finding', () => {
    expect(webApp(stage).nagFindings).toEqual([]);
  });
});

describe('the app-route rewrite function', () => {
  const rewrite = (uri: string): string => {
    const handler = runInNewContext(`${SPA_REWRITE_FUNCTION}; handler`) as (event: Json) => Json;
    return handler({ request: { uri } }).uri;
  };

  it('sends the routes of the app to index.html', () => {
    expect(rewrite('/')).toBe('/index.html');
    expect(rewrite('/models')).toBe('/index.html');
    expect(rewrite('/models/mdl_01ABC')).toBe('/index.html');
    expect(rewrite('/admin/models/')).toBe('/index.html');
  });

  it('leaves files alone', () => {
    expect(rewrite('/assets/index-AbC123.js')).toBe('/assets/index-AbC123.js');
    expect(rewrite('/favicon.svg')).toBe('/favicon.svg');
  });
});

describe('synthesis without a built UI', () => {
  const stackWithoutUi = (context: Record<string, unknown>) => {
    const app = new App({ context, outdir: tempDir('no-ui') });
    const apiStack = new Stack(app, 'Api');
    const api = new apigwv2.HttpApi(apiStack, 'HttpApi');
    return () =>
      new WebStack(app, 'Web', { settings: stageSettings('dev'), api, webRoot: tempDir('empty-dist') });
  };

  it('fails with a message that says to run npm run build:web', () => {
    expect(stackWithoutUi({})).toThrow(/web UI is not built.*npm run build:web/);
  });

  it('uses a placeholder page when bundling is skipped, as in these tests', () => {
    const web = stackWithoutUi({ 'aws:cdk:bundling-stacks': [] })();
    Template.fromStack(web).resourceCountIs('Custom::CDKBucketDeployment', 2);
  });
});
