#!/usr/bin/env node
// The CLI is written in TypeScript and run through tsx's loader, so there is no build step
// between a checkout and a working `framewise` command.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../scripts/cli.ts');
process.exitCode = await main(process.argv.slice(2));
