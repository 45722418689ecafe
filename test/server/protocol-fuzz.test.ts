// Property-based fuzzing (fast-check) of what a client can send: the binary frame parser and the
// JSON control parser either accept a message or throw E_PROTOCOL, never anything else; and on a
// real server, random and mutated messages on one socket are each answered without a crash, every
// error carries a stable code, and a bystander session on the same server keeps getting exactly
// the labels the offline computation gives.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { Embedder } from '../../models/embedder.ts';
import type { Frame } from '../../core/types.ts';
import {
  decodeFrame,
  encodeFrame,
  FRAME_HEADER_BYTES,
  parseClientControl,
  PROTOCOL_VERSION,
  type ErrorMessage,
  type LabelMessage,
  type ServerMessage,
} from '../../server/protocol.ts';
import { createServer, type LoadedModel, type RunningServer } from '../../server/server.ts';
import { connectLive, type LiveClient } from '../../server/ws-client.ts';
import { makeClip, tmpDir } from '../helpers/video.ts';
import { decodeAll, loadTestEmbedder, testModel } from './fixtures.ts';

const CODES = new Set<string>(Object.values(ErrorCodes));
const CONTROL_TYPES = ['hello', 'reset', 'subscribe', 'unsubscribe'];

/** Runs `parse`; true when it accepted, false when it threw E_PROTOCOL; anything else fails the property. */
function acceptsOrRefuses(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch (err) {
    if (!(err instanceof FramewiseError) || err.code !== ErrorCodes.PROTOCOL) throw err;
    return false;
  }
}

/** A valid frame of side `size`, then byte flips, a cut or an extension. */
function mutatedFrame(size: number): fc.Arbitrary<Uint8Array> {
  const valid = fc
    .record({ index: fc.nat(), timestampMs: fc.double({ noNaN: true, min: 0, max: 1e9 }), format: fc.constantFrom('rgb24' as const, 'jpeg' as const) })
    .map((h) => encodeFrame({ ...h, width: size, height: size }, new Uint8Array(h.format === 'rgb24' ? size * size * 3 : 40).fill(7)));
  const flips = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 });
  // A length near the valid one, or a cut inside or just after the header.
  const length = fc.oneof(
    fc.integer({ min: -30, max: 30 }).map((d) => (n: number) => n + d),
    fc.nat(FRAME_HEADER_BYTES + 8).map((k) => () => k),
  );
  return fc.tuple(valid, flips, length).map(([bytes, changes, lengthOf]) => {
    const out = new Uint8Array(Math.max(0, lengthOf(bytes.length)));
    out.set(bytes.subarray(0, out.length));
    // Flips aimed at the header, where the parser decides.
    for (const [at, v] of changes) if (out.length > 0) out[at % Math.min(out.length, FRAME_HEADER_BYTES + 4)] = v;
    return out;
  });
}

/** JSON text that is often nearly a control message: a known type with random fields, or anything. */
const controlText: fc.Arbitrary<string> = fc.oneof(
  fc
    .record(
      {
        type: fc.constantFrom(...CONTROL_TYPES),
        version: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.jsonValue()),
        jobId: fc.oneof(fc.string(), fc.jsonValue()),
        client: fc.jsonValue(),
      },
      { requiredKeys: ['type'] },
    )
    .map((m) => JSON.stringify(m)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 300 }),
  fc.string({ minLength: 4000, maxLength: 5000 }),
);

describe('parsers', () => {
  test('decodeFrame: random bytes and mutated frames are parsed or refused with E_PROTOCOL', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => void acceptsOrRefuses(() => decodeFrame(bytes, { size: 8 }))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(mutatedFrame(8), (bytes) => {
        if (acceptsOrRefuses(() => decodeFrame(bytes, { size: 8 }))) {
          const f = decodeFrame(bytes, { size: 8 });
          expect([f.width, f.height]).toEqual([8, 8]);
          expect(Number.isFinite(f.timestampMs)).toBe(true);
          if (f.format === 'rgb24') expect(f.payload.byteLength).toBe(8 * 8 * 3);
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('parseClientControl: any text is a well-formed control message or E_PROTOCOL', () => {
    fc.assert(
      fc.property(controlText, (text) => {
        if (acceptsOrRefuses(() => parseClientControl(text))) {
          const m = parseClientControl(text);
          expect(CONTROL_TYPES).toContain(m.type);
          if (m.type === 'hello') expect(Number.isInteger(m.version)).toBe(true);
          if (m.type === 'subscribe' || m.type === 'unsubscribe') expect(m.jobId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('a real server under fuzzed messages', () => {
  const dir = tmpDir('framewise-fuzz-');
  let embedder: Embedder;
  let model: LoadedModel;
  let server: RunningServer;
  let frames: Frame[];
  let reference: Float32Array[];

  beforeAll(async () => {
    embedder = await loadTestEmbedder();
    model = testModel(embedder);
    frames = await decodeAll(await makeClip({ durationSec: 0.6, fps: 10, width: 96, height: 96, dir: dir.path }));
    reference = model.head.predict(await embedder.embed(frames));
    server = await createServer({ model, port: 0, clientDir: dir.path, jobsDir: dir.file('jobs') });
  });

  afterAll(async () => {
    await server?.close();
    model?.head.dispose();
    embedder?.dispose();
    dir.cleanup();
  });

  /** Streams the clip one frame at a time from a clean state; resolves with its labels. */
  async function bystanderRun(c: LiveClient): Promise<LabelMessage[]> {
    c.sendJson({ type: 'reset' });
    await c.next((m) => m.type === 'reset');
    const out: LabelMessage[] = [];
    for (const f of frames) {
      c.sendFrame({ index: f.index, timestampMs: f.timestampMs }, f.rgb);
      out.push(await c.next<LabelMessage>((m) => m.type === 'label', 20_000));
    }
    return out;
  }

  // A hello with another version ends the session by design: kept out so that each run's
  // messages all reach the same session.
  const message = fc.oneof(
    { weight: 3, arbitrary: mutatedFrame(224) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: 3, arbitrary: controlText.filter((t) => !/"type":"hello"/.test(t) || /"version":1[,}]/.test(t)) },
  );

  test('every message is answered without a crash, errors carry a code, and a bystander session is undisturbed', async () => {
    const bystander = await connectLive(server.url, 'bystander');
    let answered = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(message, { minLength: 5, maxLength: 25 }), async (messages) => {
          const fuzz = await connectLive(server.url, 'fuzz');
          try {
            const [labels] = await Promise.all([
              bystanderRun(bystander),
              (async () => {
                for (const m of messages) fuzz.ws.send(m);
              })(),
            ]);
            labels.forEach((l, i) => {
              expect(l.index).toBe(i);
              l.probs.forEach((p, k) => expect(p).toBeCloseTo(reference[i]![k]!, 4));
            });
            // The session still answers: a reset is acknowledged after everything sent before it.
            fuzz.sendJson({ type: 'reset' });
            await fuzz.next((m) => m.type === 'reset', 20_000);
            expect(fuzz.ws.readyState).toBe(fuzz.ws.OPEN);
            const errors = fuzz.messages.filter((m: ServerMessage): m is ErrorMessage => m.type === 'error');
            answered += errors.length;
            for (const e of errors) {
              expect(CODES.has(e.code), e.code).toBe(true);
              expect(e.streamId).toBe(fuzz.welcome.streamId);
            }
            expect(bystander.messages.filter((m) => m.type === 'error')).toEqual([]);
          } finally {
            await fuzz.close();
          }
        }),
        { numRuns: 12 },
      );
      expect(answered).toBeGreaterThan(12); // the messages did reach the parsers
    } finally {
      await bystander.close();
    }
  }, 120_000);
});
