// `framewise bench --json` on the precision part, kept short (--quick, one round, the fastest
// embedder): one JSON object on stdout with the figures per embedder, among them the share of a
// trained bundle's labels that int8 embeddings leave unchanged. The bundle is the shared test
// bundle, whose head reads appearance and motion, so the agreement must feed the head what label
// feeds it (it once fed embeddings alone and the bench stopped with E_USAGE). About a minute.
import { expect, test } from 'vitest';
import { runCli } from '../../helpers/cli.ts';
import { TEST_EMBEDDER, trainedBundle } from '../../helpers/trained-bundle.ts';

interface EmbedderFigures {
  embedOnly: { fp32: number; int8: number };
  endToEnd: { fp32: number; int8: number };
  agreement: { cosineMedian: number; labelAgreement: number | null; labelFrames: number };
}

test('bench --json prints every figure per embedder, the label agreement of a motion bundle included', async () => {
  const fixture = await trainedBundle();
  const r = await runCli([
    'bench',
    '--quick',
    '--skip-engines',
    '--spine-seconds',
    '0',
    '--rounds',
    '1',
    '--embedders',
    TEST_EMBEDDER,
    '--agreement-bundle',
    fixture.bundle,
    '--agreement-data',
    fixture.data,
    '--json',
  ]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { cpu: string; embedders: Record<string, EmbedderFigures> };
  expect(out.cpu.length).toBeGreaterThan(0);
  const f = out.embedders[TEST_EMBEDDER]!;
  for (const fps of [f.embedOnly.fp32, f.embedOnly.int8, f.endToEnd.fp32, f.endToEnd.int8]) expect(fps).toBeGreaterThan(0);
  expect(f.agreement.cosineMedian).toBeGreaterThan(0.9);
  // Every frame of the fixture's clips, through the head as label runs it.
  expect(f.agreement.labelFrames).toBeGreaterThan(100);
  expect(f.agreement.labelAgreement).toBeGreaterThan(0.9);
  expect(f.agreement.labelAgreement).toBeLessThanOrEqual(1);
  // The text goes to stderr, the JSON alone to stdout.
  expect(r.stderr).toMatch(/label agreement int8 vs fp32/);
}, 300_000);
