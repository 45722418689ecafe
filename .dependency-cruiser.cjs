// The layers of framewise, lowest first: core < models < pipeline < training / server / queue <
// scripts. Each folder imports only folders below it; the browser client takes only the protocol
// module and browser-safe code. `npm test` runs this check (npm run deps): a forbidden import fails
// the run with the rule's name.
const LAYERS = ['core', 'models', 'pipeline', 'training', 'server', 'queue', 'scripts', 'client'];
/** What each layer may import besides itself (and npm packages). */
const ALLOWED = {
  core: [],
  models: ['core'],
  pipeline: ['core', 'models'],
  training: ['core', 'models', 'pipeline'],
  server: ['core', 'models', 'pipeline', 'training'],
  queue: ['core', 'models', 'pipeline'],
  scripts: ['core', 'models', 'pipeline', 'training', 'server', 'queue'],
};

const layerRules = Object.entries(ALLOWED).map(([layer, allowed]) => ({
  name: `${layer}-imports-only-${allowed.length ? allowed.join('-') : 'itself'}`,
  severity: 'error',
  comment: `${layer}/ may import ${allowed.length ? allowed.map((l) => `${l}/`).join(', ') : 'nothing of ours'} and itself`,
  from: { path: `^${layer}/` },
  to: { path: `^(${LAYERS.filter((l) => l !== layer && !allowed.includes(l)).join('|')})/` },
}));

// Modules the browser bundle may contain: they must never reach a Node module.
const BROWSER_SAFE = [
  '^client/',
  '^server/protocol\\.ts$',
  '^core/(errors|live-frame|types|seeded-random)\\.ts$',
  '^models/recurrent/(cells|head-math|bundle-meta|state|input-norm|init)\\.ts$',
  '^pipeline/frame-label\\.ts$',
  '^models/(registry|motion)\\.ts$',
];

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'an import circle hides which module owns a concept',
      from: { path: `^(${LAYERS.join('|')})/` },
      to: { circular: true },
    },
    {
      name: 'client-takes-protocol-and-browser-safe-only',
      severity: 'error',
      comment: 'the browser app imports the protocol module and browser-safe modules only',
      from: { path: '^client/' },
      to: { pathNot: BROWSER_SAFE.join('|'), dependencyTypesNot: ['npm', 'npm-dev', 'npm-optional'] },
    },
    {
      name: 'browser-code-uses-no-node-module',
      severity: 'error',
      comment: 'code that runs in the browser cannot import node: modules',
      from: { path: BROWSER_SAFE.join('|') },
      to: { dependencyTypes: ['core'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|client/dist)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.mjs', '.js', '.json'],
    },
  },
};
