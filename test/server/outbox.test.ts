// Coalescing for slow readers: above the bufferedAmount threshold a newer label replaces the
// waiting one, dropped reports merge, and nothing is lost that matters once the socket drains.
import { expect, test, vi } from 'vitest';
import type WebSocket from 'ws';
import { Outbox } from '../../server/outbox.ts';
import type { ServerMessage } from '../../server/protocol.ts';

function fakeSocket() {
  const sent: ServerMessage[] = [];
  const ws = { OPEN: 1, readyState: 1, bufferedAmount: 0, send: (text: string) => sent.push(JSON.parse(text) as ServerMessage) };
  return { ws, sent };
}

const label = (index: number): ServerMessage => ({ type: 'label', streamId: 's', index, timestampMs: index, label: 'a', score: 1, probs: [1] });
const dropped = (index: number): ServerMessage => ({
  type: 'dropped',
  streamId: 's',
  index,
  timestampMs: index,
  frames: [index],
  count: 1,
  reason: 'superseded',
});

test('a fast reader gets every message at once, in order', () => {
  const { ws, sent } = fakeSocket();
  const box = new Outbox(ws as unknown as WebSocket, 1000);
  for (let i = 0; i < 5; i++) box.send(label(i));
  expect(sent.map((m) => m.index)).toEqual([0, 1, 2, 3, 4]);
  expect(box.coalesced).toBe(0);
});

test('a slow reader: waiting labels are replaced by the newest, drops merge, then all flush in order', async () => {
  vi.useFakeTimers();
  try {
    const { ws, sent } = fakeSocket();
    const box = new Outbox(ws as unknown as WebSocket, 1000);
    ws.bufferedAmount = 5000;
    for (let i = 0; i < 50; i++) {
      box.send(label(i));
      box.send(dropped(100 + i));
    }
    box.send({ type: 'error', streamId: 's', index: 7, timestampMs: 0, code: 'E_PROTOCOL', message: 'x' });
    expect(sent).toHaveLength(0);
    expect(box.queued).toBe(3);
    vi.advanceTimersByTime(100);
    expect(sent).toHaveLength(0); // still above the threshold
    ws.bufferedAmount = 0;
    vi.advanceTimersByTime(100);
    expect(sent.map((m) => m.type)).toEqual(['dropped', 'label', 'error']);
    const d = sent[0] as Extract<ServerMessage, { type: 'dropped' }>;
    expect(d.count).toBe(50);
    expect(d.frames).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    expect(sent[1]!.index).toBe(49);
    expect(box.coalesced).toBe(49 + 49);
  } finally {
    vi.useRealTimers();
  }
});

test('a reader that never reads, drops of mixed reasons: at most one report per reason waits, counts kept', () => {
  vi.useFakeTimers();
  try {
    const { ws, sent } = fakeSocket();
    const box = new Outbox(ws as unknown as WebSocket, 1000);
    ws.bufferedAmount = 5000;
    const reasons = ['superseded', 'invalid', 'reset'] as const;
    for (let i = 0; i < 3000; i++) {
      box.send({ type: 'dropped', streamId: 's', index: i, timestampMs: i, frames: [i], count: 1, reason: reasons[i % 3]! });
      box.send(label(i));
    }
    expect(box.queued).toBe(4); // three reports and the newest label
    ws.bufferedAmount = 0;
    vi.advanceTimersByTime(100);
    const reports = sent.filter((m): m is Extract<ServerMessage, { type: 'dropped' }> => m.type === 'dropped');
    expect(reports.map((r) => r.reason).sort()).toEqual(['invalid', 'reset', 'superseded']);
    for (const r of reports) {
      expect(r.count).toBe(1000);
      expect(r.frames).toHaveLength(256);
      expect(r.index).toBe(r.frames.at(-1));
    }
  } finally {
    vi.useRealTimers();
  }
});
