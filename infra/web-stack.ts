/**
 * The web UI: web/dist in a private bucket behind a CloudFront distribution, which also routes the
 * API's paths to the HTTP API, so the UI and the API share one origin (no CORS between them).
 * Static files are cached at the edge; API requests are never cached and reach the API with every
 * viewer header except Host. Deep links of the single-page app are rewritten to /index.html by a
 * CloudFront function on the default behaviour only, so that the API's own 403s and 404s (problem+json)
 * are never replaced by the app's page, as a distribution-wide error response would do.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  Aws,
  CfnOutput,
  CfnRule,
  DefaultStackSynthesizer,
  Duration,
  Fn,
  SecretValue,
  Stack,
  type StackProps,
  Token,
  Validations,
} from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import type { Construct, IConstruct } from 'constructs';
import { REPO_ROOT } from './paths.ts';
import type { StageSettings } from './stage.ts';

/** Where `npm run build:web` writes the UI. */
export const WEB_DIST = join(REPO_ROOT, 'web', 'dist');

/** The paths that belong to the API; everything else is the UI. The local gateway routes the same way. */
export const API_PATH_PATTERNS = ['/v1/*', '/openapi.json', '/docs*', '/.well-known/*'] as const;

/** Vite puts content-hashed files under assets/: they never change, so browsers may keep them a year. */
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';
/** index.html and the other unhashed files are revalidated on every load, so a deployment shows at once. */
export const REVALIDATE_CACHE_CONTROL = 'no-cache';

/**
 * The UI's Content-Security-Policy: only its own scripts and styles (no inline code), API calls to
 * its own origin, and uploads and downloads through presigned S3 URLs (`connectSources`).
 */
export function contentSecurityPolicy(connectSources: string[], { upgradeInsecureRequests = true } = {}) {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${["'self'", ...connectSources].join(' ')}`,
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    ...(upgradeInsecureRequests ? ['upgrade-insecure-requests'] : []),
  ].join('; ');
}

/**
 * The origins of the presigned S3 URLs that the UI PUTs files to and downloads from: each bucket by
 * name, virtual-hosted, at its regional endpoint (what the SDK signs) and at the global one (what
 * S3 may redirect to). The browser sends those uploads cross-origin, so the buckets' CORS rules (the
 * stateful stack's `corsOrigins`) must name this distribution's origin: `-c corsOrigins=https://<WebUrl>`.
 */
export function presignedBucketOrigins(buckets: readonly s3.IBucket[]): string[] {
  return buckets.flatMap((bucket) => [
    `https://${bucket.bucketName}.s3.${Aws.REGION}.${Aws.URL_SUFFIX}`,
    `https://${bucket.bucketName}.s3.${Aws.URL_SUFFIX}`,
  ]);
}

/**
 * Rewrites a path without a file extension (a route of the app, e.g. /models/iris) to /index.html.
 * Runs on viewer requests of the default behaviour only; API paths have behaviours of their own.
 */
export const SPA_REWRITE_FUNCTION = `function handler(event) {
  var request = event.request;
  var last = request.uri.split('/').pop();
  if (last.indexOf('.') === -1) request.uri = '/index.html';
  return request;
}`;

/**
 * The header CloudFront adds to every request it sends the API, with the origin-verify secret's
 * `current` value; the API refuses requests without it (they did not come through CloudFront).
 * A viewer cannot set it: CloudFront replaces a viewer's header of the same name with its own.
 */
export const ORIGIN_VERIFY_HEADER = 'x-origin-verify';

/** Requests per source address and 5 minutes, over everything, before the web ACL answers 429. */
export const WAF_REQUESTS_PER_ADDRESS = 2000;
/** Sign-ins, token refreshes and sign-ups (POST /v1/tokens, POST /v1/users) per source address and 5 minutes. */
export const WAF_SIGN_INS_PER_ADDRESS = 100;

/** What the edge looks like, from the context flags (`parseEdgeOptions`). */
export interface EdgeOptions {
  /** `-c waf=true`: a CloudFront web ACL with rate-based rules, created by this stack (us-east-1 only). */
  waf: boolean;
  /** `-c webAclArn=...`: an existing CloudFront web ACL (made in us-east-1) to attach instead. */
  webAclArn?: string | undefined;
  /** `-c domainName=... -c certificateArn=...`: the distribution's own name and its ACM certificate (us-east-1). */
  customDomain?: { domainName: string; certificateArn: string } | undefined;
  /** `-c originVerifyVersionId=...`: the secret version CloudFront sends (default: AWSCURRENT at deployment). */
  originVerifyVersionId?: string | undefined;
}

/** Reads and checks the edge's context flags; a wrong combination fails the synth with the reason. */
export function parseEdgeOptions(context: (key: string) => unknown): EdgeOptions {
  const text = (key: string) => {
    const value = context(key);
    return value === undefined || value === null || value === '' ? undefined : String(value);
  };
  const wafFlag = text('waf');
  if (wafFlag !== undefined && wafFlag !== 'true' && wafFlag !== 'false') {
    throw new Error(`-c waf=${wafFlag}: use true or false.`);
  }
  const waf = wafFlag === 'true';
  const webAclArn = text('webAclArn');
  if (webAclArn !== undefined) {
    if (waf)
      throw new Error('-c waf=true creates a web ACL and -c webAclArn names one: give only one of them.');
    if (!/^arn:aws[\w-]*:wafv2:us-east-1:\d{12}:global\/webacl\/[\w-]+\/[\w-]+$/.test(webAclArn)) {
      throw new Error(
        `-c webAclArn=${webAclArn} is not the ARN of a CloudFront web ACL (arn:aws:wafv2:us-east-1:<account>:global/webacl/<name>/<id>).`,
      );
    }
  }
  const domainName = text('domainName');
  const certificateArn = text('certificateArn');
  if ((domainName === undefined) !== (certificateArn === undefined)) {
    throw new Error(
      '-c domainName and -c certificateArn go together: CloudFront needs a certificate for the name.',
    );
  }
  if (
    certificateArn !== undefined &&
    !/^arn:aws[\w-]*:acm:us-east-1:\d{12}:certificate\/[\w-]+$/.test(certificateArn)
  ) {
    throw new Error(
      `-c certificateArn=${certificateArn}: CloudFront takes ACM certificates from us-east-1 only (arn:aws:acm:us-east-1:...).`,
    );
  }
  return {
    waf,
    webAclArn,
    customDomain: domainName && certificateArn ? { domainName, certificateArn } : undefined,
    originVerifyVersionId: text('originVerifyVersionId'),
  };
}

export interface WebStackProps extends StackProps {
  settings: StageSettings;
  /** The HTTP API that answers the API paths. */
  api: apigwv2.HttpApi;
  /** Its value goes to the API in the `ORIGIN_VERIFY_HEADER` of every request. */
  originVerifySecret: secretsmanager.ISecret;
  /** The buckets the UI uploads to and downloads from with presigned URLs (the CSP names them). */
  presignedBuckets: readonly s3.IBucket[];
  /** WAF, custom domain, origin-verify version (default: none of them). */
  edge?: EdgeOptions;
  /** The built UI (default web/dist). */
  webRoot?: string;
}

export class WebStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly logsBucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  /** The web ACL this stack created (`-c waf=true`). */
  readonly webAcl?: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: WebStackProps) {
    super(scope, id, props);
    const { settings } = props;
    const edge = props.edge ?? { waf: false };
    const production = settings.stage === 'prod';
    const webRoot = props.webRoot ?? WEB_DIST;

    // CloudFront's standard logs are delivered with ACLs, so this bucket keeps them enabled (owner preferred).
    this.logsBucket = new s3.Bucket(this, 'LogsBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(settings.logRetentionDays) }],
      removalPolicy: settings.removalPolicy,
      autoDeleteObjects: !production,
    });
    Validations.of(this.logsBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        "This is the web stack's log bucket itself (S3 and CloudFront logs); logging it into itself would loop.",
    });

    this.bucket = new s3.Bucket(this, 'SiteBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.logsBucket,
      serverAccessLogsPrefix: 's3/',
      removalPolicy: settings.removalPolicy,
      autoDeleteObjects: !production,
    });

    // A dynamic reference: CloudFormation reads the secret when it deploys the distribution, so the
    // value is in neither the template nor the cloud assembly. It is read again only when the reference
    // changes, which is what -c originVerifyVersionId is for (a rotation).
    const originVerifyValue = SecretValue.secretsManager(props.originVerifySecret.secretArn, {
      jsonField: 'current',
      ...(edge.originVerifyVersionId ? { versionId: edge.originVerifyVersionId } : {}),
    });
    const apiOrigin = new origins.HttpOrigin(apiDomainName(props.api), {
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      customHeaders: { [ORIGIN_VERIFY_HEADER]: originVerifyValue.unsafeUnwrap() },
    });

    if (edge.waf) this.webAcl = this.createWebAcl(settings);
    const webAclId = this.webAcl?.attrArn ?? edge.webAclArn;

    const strictTransport = {
      accessControlMaxAge: Duration.days(365),
      includeSubdomains: true,
      override: true,
    };
    const siteHeaders = new cloudfront.ResponseHeadersPolicy(this, 'SiteHeaders', {
      comment: 'Security headers of the web UI',
      securityHeadersBehavior: {
        contentSecurityPolicy: {
          contentSecurityPolicy: contentSecurityPolicy(presignedBucketOrigins(props.presignedBuckets)),
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: {
          referrerPolicy: cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
          override: true,
        },
        strictTransportSecurity: strictTransport,
      },
    });
    // The API sets its own content type and caching; Swagger UI at /docs needs its own script policy.
    const apiHeaders = new cloudfront.ResponseHeadersPolicy(this, 'ApiHeaders', {
      comment: 'Security headers of the API paths',
      securityHeadersBehavior: {
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
        strictTransportSecurity: strictTransport,
      },
    });

    const apiBehavior: cloudfront.BehaviorOptions = {
      origin: apiOrigin,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
      cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
      // Authorization, Content-Type, Idempotency-Key and the query string reach the API; Host would
      // not match the API's own domain, so CloudFront sends the origin's.
      originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
      responseHeadersPolicy: apiHeaders,
      compress: true,
    };

    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: `Credit predictions web UI and API (${settings.stage})`,
      defaultRootObject: 'index.html',
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      // Honoured only with a certificate of one's own: with the default *.cloudfront.net certificate,
      // CloudFront's policy is TLSv1 whatever this says (and CDK leaves it out of the template).
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      ...(edge.customDomain
        ? {
            domainNames: [edge.customDomain.domainName],
            certificate: acm.Certificate.fromCertificateArn(
              this,
              'Certificate',
              edge.customDomain.certificateArn,
            ),
          }
        : {}),
      ...(webAclId ? { webAclId } : {}),
      enableLogging: true,
      logBucket: this.logsBucket,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: siteHeaders,
        compress: true,
        functionAssociations: [
          {
            eventType: cloudfront.FunctionEventType.VIEWER_REQUEST,
            function: new cloudfront.Function(this, 'SpaRewrite', {
              comment: 'Serves index.html for the routes of the single-page app',
              code: cloudfront.FunctionCode.fromInline(SPA_REWRITE_FUNCTION),
              runtime: cloudfront.FunctionRuntime.JS_2_0,
            }),
          },
        ],
      },
      additionalBehaviors: Object.fromEntries(API_PATH_PATTERNS.map((pattern) => [pattern, apiBehavior])),
    });
    this.acknowledgeDistributionFindings(this.distribution, {
      webAcl: webAclId !== undefined,
      customDomain: edge.customDomain !== undefined,
    });

    this.deploySite(webRoot);

    new CfnOutput(this, 'WebUrl', {
      value: `https://${edge.customDomain?.domainName ?? this.distribution.distributionDomainName}`,
      description: 'The web UI, with the API under /v1 on the same origin',
    });
    if (edge.customDomain) {
      new CfnOutput(this, 'DistributionDomainName', {
        value: this.distribution.distributionDomainName,
        description: `Point ${edge.customDomain.domainName} here (a CNAME, or a Route 53 alias)`,
      });
    }
  }

  /**
   * A CloudFront web ACL with two rate-based rules per source address: sign-ins and sign-ups (the
   * scrypt routes, where API Gateway's route throttles count all clients together), then everything.
   * Both answer 429, like API Gateway's throttling. CloudFront web ACLs exist in us-east-1 only: the
   * synth refuses another region it knows, and CloudFormation refuses one it only learns at deploy
   * time (a template rule), before it creates anything.
   */
  private createWebAcl(settings: StageSettings): wafv2.CfnWebACL {
    if (!Token.isUnresolved(this.region) && this.region !== 'us-east-1') {
      throw new Error(
        `-c waf=true creates a CloudFront web ACL, which exists in us-east-1 only, and this stack is in ${this.region}: ` +
          'deploy to us-east-1, or create the web ACL there and pass -c webAclArn=<its ARN>.',
      );
    }
    new CfnRule(this, 'WebAclInUsEast1', {
      assertions: [
        {
          assert: Fn.conditionEquals(Aws.REGION, 'us-east-1'),
          assertDescription:
            'A CloudFront web ACL (-c waf=true) can only be created in us-east-1: deploy there, or create the ' +
            'web ACL in us-east-1 yourself and pass -c webAclArn=<its ARN> instead.',
        },
      ],
    });
    const tooMany = { block: { customResponse: { responseCode: 429 } } };
    const visibility = (metricName: string) => ({
      cloudWatchMetricsEnabled: true,
      metricName: `credit-predictions-${settings.stage}-${metricName}`,
      sampledRequestsEnabled: true,
    });
    const matches = (field: wafv2.CfnWebACL.FieldToMatchProperty, value: string) => ({
      byteMatchStatement: {
        fieldToMatch: field,
        positionalConstraint: 'EXACTLY',
        searchString: value,
        textTransformations: [{ priority: 0, type: 'NONE' }],
      },
    });
    return new wafv2.CfnWebACL(this, 'WebAcl', {
      name: `credit-predictions-${settings.stage}`,
      description: `Rate limits per source address in front of credit-predictions ${settings.stage}`,
      scope: 'CLOUDFRONT',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('web-acl'),
      rules: [
        {
          name: 'SignInsAndSignUpsPerAddress',
          priority: 0,
          action: tooMany,
          statement: {
            rateBasedStatement: {
              limit: WAF_SIGN_INS_PER_ADDRESS,
              evaluationWindowSec: 300,
              aggregateKeyType: 'IP',
              scopeDownStatement: {
                andStatement: {
                  statements: [
                    matches({ method: {} }, 'POST'),
                    {
                      orStatement: {
                        statements: [
                          matches({ uriPath: {} }, '/v1/tokens'),
                          matches({ uriPath: {} }, '/v1/users'),
                        ],
                      },
                    },
                  ],
                },
              },
            },
          },
          visibilityConfig: visibility('sign-ins-per-address'),
        },
        {
          name: 'RequestsPerAddress',
          priority: 1,
          action: tooMany,
          statement: {
            rateBasedStatement: {
              limit: WAF_REQUESTS_PER_ADDRESS,
              evaluationWindowSec: 300,
              aggregateKeyType: 'IP',
            },
          },
          visibilityConfig: visibility('requests-per-address'),
        },
      ],
    });
  }

  /**
   * Two deployments: the hashed assets with a year's caching, then everything else revalidated on
   * each load. Neither prunes, so the assets of the previous version stay for pages still open.
   */
  private deploySite(webRoot: string) {
    const sources = siteSources(this, webRoot);
    // Both deployments share CDK's singleton function, and so this role.
    const role = new DeploymentRole(this, 'DeploymentRole', this.distribution);
    const assets = new s3deploy.BucketDeployment(this, 'DeployAssets', {
      role,
      sources,
      destinationBucket: this.bucket,
      include: ['assets/*'],
      exclude: ['*'],
      cacheControl: [s3deploy.CacheControl.fromString(IMMUTABLE_CACHE_CONTROL)],
      prune: false,
      memoryLimit: 512,
    });
    const pages = new s3deploy.BucketDeployment(this, 'DeployPages', {
      role,
      sources,
      destinationBucket: this.bucket,
      exclude: ['assets/*'],
      cacheControl: [s3deploy.CacheControl.fromString(REVALIDATE_CACHE_CONTROL)],
      prune: false,
      memoryLimit: 512,
      distribution: this.distribution,
      distributionPaths: ['/', '/index.html'],
    });
    // index.html must not name assets that are not uploaded yet.
    pages.node.addDependency(assets);
    this.acknowledgeDeploymentFindings(role);
  }

  private acknowledgeDistributionFindings(
    distribution: cloudfront.Distribution,
    { webAcl, customDomain }: { webAcl: boolean; customDomain: boolean },
  ) {
    const acknowledge = (id: string, reason: string) =>
      Validations.of(distribution).acknowledge({ id, reason });
    acknowledge(
      'AwsSolutions-CFR1',
      'The service is offered worldwide: no country is excluded, so a geo restriction would only list every country.',
    );
    if (!webAcl) {
      acknowledge(
        'AwsSolutions-CFR2',
        'The web ACL is optional (-c waf=true, or -c webAclArn=): it is a us-east-1 resource billed per request. ' +
          'Without it, API Gateway throttles the stage and the sign-in and sign-up routes, and the service limits ' +
          'failed sign-ins per account and per source and predictions per user.',
      );
    }
    if (!customDomain) {
      acknowledge(
        'AwsSolutions-CFR4',
        'Without a domain of its own (-c domainName= -c certificateArn=) the distribution has the default ' +
          '*.cloudfront.net certificate, with which CloudFront allows TLSv1 and later whatever the minimum ' +
          'protocol version says; with one, TLSv1.2_2021 applies.',
      );
    }
  }

  /**
   * BucketDeployment runs a CDK-provided singleton function at deploy time, with the role above;
   * their findings are acknowledged on them only, one wildcard at a time.
   */
  private acknowledgeDeploymentFindings(role: DeploymentRole) {
    const qualifier = String(
      this.node.tryGetContext('@aws-cdk/core:bootstrapQualifier') ??
        DefaultStackSynthesizer.DEFAULT_QUALIFIER,
    );
    const assetObjects = `arn:<AWS::Partition>:s3:::cdk-${qualifier}-assets-<AWS::AccountId>-<AWS::Region>/*`;
    const siteObjects = `${nagReference(this, this.bucket.bucketArn)}/*`;
    const wildcard = (finding: string) => `AwsSolutions-IAM5[${finding}]`;
    acknowledgeOn(role, {
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
        "The role of CDK's BucketDeployment function (it copies web/dist into the site bucket at deploy time) has " +
        'the AWS-maintained AWSLambdaBasicExecutionRole, which only allows writing its CloudWatch logs.',
      [wildcard('Action::s3:GetObject*')]:
        'BucketDeployment reads the zipped UI from the CDK asset bucket (GetObject and its read-only variants) ' +
        'and reads back the site bucket while syncing; no write action is in this wildcard.',
      [wildcard('Action::s3:GetBucket*')]:
        'Read-only bucket metadata (GetBucketLocation...) that the AWS CLI sync in BucketDeployment needs on ' +
        'the asset and site buckets; nothing in it changes a bucket.',
      [wildcard('Action::s3:List*')]:
        'The AWS CLI sync in BucketDeployment lists the site bucket to compare it with the new files; listing ' +
        'is limited to the asset and site buckets.',
      [wildcard('Action::s3:Abort*')]:
        'Lets BucketDeployment abandon a failed multipart upload of a large file into the site bucket cleanly; ' +
        'limited to that bucket.',
      [wildcard('Action::s3:DeleteObject*')]:
        'Granted by BucketDeployment for pruning; both deployments here set prune: false, and the grant covers ' +
        'only the site bucket, whose contents are entirely this deployment.',
      [wildcard(`Resource::${assetObjects}`)]:
        'The CDK bootstrap asset bucket of this account and region, where the zipped UI is staged; its object ' +
        'keys are content hashes known only at synth time.',
      [wildcard(`Resource::${siteObjects}`)]:
        'The objects of the site bucket: the file names of the built UI (hashed asset names) change with every ' +
        'build, so they cannot be listed in the policy.',
    });
    for (const child of this.node.children) {
      if (!child.node.id.startsWith('Custom::CDKBucketDeployment')) continue;
      acknowledgeOn(child, {
        'AwsSolutions-L1':
          "The runtime of CDK's BucketDeployment function is chosen and tested by aws-cdk-lib (it bundles the " +
          'AWS CLI in a layer for that runtime); it moves with aws-cdk-lib upgrades, not with this code.',
      });
    }
  }
}

/**
 * The role of CDK's BucketDeployment function. BucketDeployment grants cloudfront:CreateInvalidation
 * and GetInvalidation on `*`; both take a distribution ARN, so this role narrows that statement to
 * the one distribution the site is served from, and passes every other statement through.
 */
class DeploymentRole extends iam.Role {
  constructor(
    scope: Construct,
    id: string,
    private readonly distribution: cloudfront.IDistribution,
  ) {
    super(scope, id, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description:
        "Runs CDK's BucketDeployment: copies the built UI into the site bucket and invalidates index.html",
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole'),
      ],
    });
  }

  override addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    const invalidates =
      statement.actions.length > 0 && statement.actions.every((a) => a.startsWith('cloudfront:'));
    if (!invalidates || !statement.resources.includes('*')) return super.addToPrincipalPolicy(statement);
    return super.addToPrincipalPolicy(
      new iam.PolicyStatement({
        effect: statement.effect,
        actions: statement.actions,
        resources: [this.distribution.distributionArn],
      }),
    );
  }
}

function acknowledgeOn(construct: IConstruct, findings: Record<string, string>) {
  for (const [id, reason] of Object.entries(findings)) Validations.of(construct).acknowledge({ id, reason });
}

/** How cdk-nag names an attribute of a resource in this stack: `<LogicalId.Attribute>`. */
function nagReference(stack: Stack, attribute: string): string {
  const resolved: unknown = stack.resolve(attribute);
  if (
    resolved &&
    typeof resolved === 'object' &&
    'Fn::GetAtt' in resolved &&
    Array.isArray(resolved['Fn::GetAtt'])
  )
    return `<${resolved['Fn::GetAtt'].join('.')}>`;
  throw new Error(`Cannot tell how cdk-nag names ${JSON.stringify(resolved)}.`);
}

/** The API's host name, `<apiId>.execute-api.<region>.amazonaws.com`, taken from its endpoint URL. */
function apiDomainName(api: apigwv2.HttpApi): string {
  return Fn.select(2, Fn.split('/', api.apiEndpoint));
}

/**
 * The files to deploy. Synthesis needs the built UI; tests that skip bundling (the
 * `aws:cdk:bundling-stacks` context set to []) get a placeholder page instead.
 */
function siteSources(stack: Stack, webRoot: string): s3deploy.ISource[] {
  if (existsSync(join(webRoot, 'index.html'))) return [s3deploy.Source.asset(webRoot)];
  if (!stack.bundlingRequired)
    return [
      s3deploy.Source.data('index.html', '<!doctype html><title>Credit Predictions</title><p>Placeholder.'),
    ];
  throw new Error(
    `The web UI is not built: ${join(webRoot, 'index.html')} is missing. Run \`npm run build:web\` before \`cdk synth\` or \`cdk deploy\`.`,
  );
}
