#!/usr/bin/env node
// In a checkout the CLI runs from its TypeScript sources through tsx's loader, so an edit needs no
// build step; an installed package has no sources and runs the build in dist/.
import { existsSync } from 'node:fs';

const sources = new URL('../scripts/cli.ts', import.meta.url);
let main;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
} else {
  ({ main } = await import(new URL('../dist/scripts/cli.js', import.meta.url).href));
}
process.exitCode = await main(process.argv.slice(2));
