/**
 * Layering rules: the domain and the handlers never talk to AWS or onnxruntime directly; only the
 * adapters (and the CDK/local tooling) do; adapters are wired in shared/app alone, and the HTTP layer
 * is handed what it needs. Run by `npm run lint`.
 */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'shared/domain holds business rules and types: no AWS SDK, no onnxruntime, no adapters.',
      severity: 'error',
      from: { path: '^shared/domain/' },
      to: {
        path: '(^|/)node_modules/(@aws-sdk/|onnxruntime-node|@aws-lambda-powertools/)|^shared/adapters/',
      },
    },
    {
      name: 'sdk-only-in-adapters',
      comment: 'Only shared/adapters (and infra, tests) may import the AWS SDK or onnxruntime-node.',
      severity: 'error',
      from: { path: '^(shared|functions)/', pathNot: '^shared/adapters/' },
      to: { path: '(^|/)node_modules/(@aws-sdk/|onnxruntime-node)' },
    },
    {
      name: 'functions-stay-thin',
      comment: 'A handler wires one use case; handlers do not import each other.',
      severity: 'error',
      from: { path: '^functions/([^/]+)/' },
      to: { path: '^functions/', pathNot: '^functions/$1/' },
    },
    {
      name: 'http-layer-is-handed-its-dependencies',
      comment:
        'shared/http (the middy chain, validation, problem+json) never imports the composition root: a function hands it `authenticate`, so the HTTP layer does not depend on every adapter.',
      severity: 'error',
      from: { path: '^shared/http/' },
      to: { path: '^shared/app/' },
    },
    {
      name: 'functions-get-adapters-wired',
      comment:
        'Handlers ask shared/app for wired services and never import an adapter themselves (only the composition root picks adapters).',
      severity: 'error',
      from: { path: '^functions/' },
      to: { path: '^shared/adapters/' },
    },
    {
      name: 'shared-does-not-import-infra',
      comment:
        'What both the stacks and the functions need (stage defaults, bucket prefixes, metric names, the route and function tables) is defined in shared/, which infra imports; shared/ never imports infra/.',
      severity: 'error',
      from: { path: '^(shared|functions)/' },
      to: { path: '^infra/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
