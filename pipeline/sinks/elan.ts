// `<name>.eaf`: an ELAN annotation document (EAF 3.0) with one tier of the predicted segments and
// the media linked (MEDIA_URL absolute, RELATIVE_MEDIA_URL from the .eaf's folder), to open in ELAN
// for correction. And its reader.
//
// Convention: ELAN counts integer milliseconds of media time (plus the media descriptor's
// TIME_ORIGIN offset). A segment over source frames [s, e) spans round(s * 1000 / fps) to
// round(e * 1000 / fps) ms; reading back, a frame belongs to the annotation holding the middle of
// its display interval, so the millisecond rounding never moves a boundary by a frame. ELAN has no
// scores; gaps (`unknown`, `background`) have no annotation.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Segment } from '../../core/types.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { DocumentSink } from './document-sink.ts';
import { type AnnotationOptions, mediaName, requireMedia, segmentsToIntervals } from './annotation-media.ts';
import { attr, buildXml, child, children, parseXml, text, type XmlNode } from './xml.ts';

export const ELAN_TIER = 'framewise';

const MIME: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mov': 'video/quicktime',
  '.avi': 'video/x-msvideo',
  '.mpg': 'video/mpeg',
  '.mpeg': 'video/mpeg',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
};

export function eafXml(segments: readonly Segment[], options: AnnotationOptions, eafFile: string): string {
  const media = requireMedia('elan', options);
  const intervals = segmentsToIntervals(segments, media.fps, options.keepUnknown, media.frameCount);
  const ms = (frame: number) => Math.round((frame * 1000) / media.fps);
  const slots: { id: string; ms: number }[] = [];
  const slotAt = new Map<number, string>();
  const slot = (t: number) => {
    let id = slotAt.get(t);
    if (!id) {
      id = `ts${slots.length + 1}`;
      slots.push({ id, ms: t });
      slotAt.set(t, id);
    }
    return id;
  };
  const annotations = intervals.map((iv, i) => ({
    ALIGNABLE_ANNOTATION: {
      '@_ANNOTATION_ID': `a${i + 1}`,
      '@_TIME_SLOT_REF1': slot(ms(iv.start)),
      '@_TIME_SLOT_REF2': slot(ms(iv.end)),
      ANNOTATION_VALUE: iv.label,
    },
  }));
  const local = !/^[a-z][a-z0-9+.-]*:/i.test(media.path);
  const mediaUrl = options.videoUrl ?? (local ? pathToFileURL(path.resolve(media.path)).href : media.path);
  const rel = local
    ? path
        .relative(path.dirname(path.resolve(eafFile)), path.resolve(media.path))
        .split(path.sep)
        .map(encodeURIComponent)
        .join('/')
    : undefined;
  return `${buildXml({
    ANNOTATION_DOCUMENT: {
      '@_AUTHOR': options.modelVersion ?? 'framewise',
      '@_DATE': new Date().toISOString(),
      '@_FORMAT': '3.0',
      '@_VERSION': '3.0',
      '@_xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
      '@_xsi:noNamespaceSchemaLocation': 'http://www.mpi.nl/tools/elan/EAFv3.0.xsd',
      HEADER: {
        '@_MEDIA_FILE': '',
        '@_TIME_UNITS': 'milliseconds',
        MEDIA_DESCRIPTOR: {
          '@_MEDIA_URL': mediaUrl,
          '@_MIME_TYPE': MIME[path.extname(mediaName(media)).toLowerCase()] ?? 'video/*',
          ...(rel ? { '@_RELATIVE_MEDIA_URL': rel.startsWith('.') ? rel : `./${rel}` } : {}),
        },
        PROPERTY: { '@_NAME': 'lastUsedAnnotationId', '#text': String(intervals.length) },
      },
      TIME_ORDER: { TIME_SLOT: slots.map((s) => ({ '@_TIME_SLOT_ID': s.id, '@_TIME_VALUE': s.ms })) },
      TIER: { '@_LINGUISTIC_TYPE_REF': 'activity', '@_TIER_ID': ELAN_TIER, ANNOTATION: annotations },
      LINGUISTIC_TYPE: { '@_GRAPHIC_REFERENCES': 'false', '@_LINGUISTIC_TYPE_ID': 'activity', '@_TIME_ALIGNABLE': 'true' },
    },
  })}\n`;
}

export function elanSink(file: string, options: AnnotationOptions): DocumentSink {
  requireMedia('elan', options);
  return new DocumentSink(file, (segs) => eafXml(segs, options, file));
}

// ---- reader ---------------------------------------------------------------------------------

export interface EafInterval {
  label: string;
  startMs: number;
  endMs: number;
  where: string;
}

export interface EafDocument {
  /** MEDIA_URL and RELATIVE_MEDIA_URL of each media descriptor, in order. */
  media: { url?: string; relative?: string; mime?: string; timeOriginMs: number }[];
  tiers: string[];
  tier: string;
  /** The tier's annotations in media time (TIME_ORIGIN added). */
  intervals: EafInterval[];
}

/** Reads one tier (`tier`, default the first tier with time-aligned annotations) of an .eaf file. */
export function parseEaf(xml: string, file: string, tier?: string): EafDocument {
  const bad = (msg: string) => new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: ${msg}`);
  const doc = parseXml(xml, file, ['TIER', 'ANNOTATION', 'TIME_SLOT', 'MEDIA_DESCRIPTOR']).ANNOTATION_DOCUMENT as XmlNode | undefined;
  if (!doc || typeof doc !== 'object') throw bad('no ANNOTATION_DOCUMENT: not an ELAN .eaf file');
  const header = child(doc, 'HEADER');
  if (header && attr(header, 'TIME_UNITS') && attr(header, 'TIME_UNITS') !== 'milliseconds')
    throw bad(`TIME_UNITS ${attr(header, 'TIME_UNITS')} (milliseconds expected)`);
  const media = children(header, 'MEDIA_DESCRIPTOR').map((m) => ({
    url: attr(m, 'MEDIA_URL'),
    relative: attr(m, 'RELATIVE_MEDIA_URL'),
    mime: attr(m, 'MIME_TYPE'),
    timeOriginMs: Number(attr(m, 'TIME_ORIGIN') ?? 0) || 0,
  }));
  // TIME_ORIGIN shifts the video against the annotations; audio descriptors do not matter here.
  const origin = (media.find((m) => m.mime?.startsWith('video')) ?? media[0])?.timeOriginMs ?? 0;
  const slots = new Map<string, number | undefined>();
  for (const s of children(child(doc, 'TIME_ORDER'), 'TIME_SLOT')) {
    const v = attr(s, 'TIME_VALUE');
    slots.set(attr(s, 'TIME_SLOT_ID') ?? '', v === undefined ? undefined : Number(v));
  }
  const tiers = children(doc, 'TIER');
  const names = tiers.map((t) => attr(t, 'TIER_ID') ?? '');
  const aligned = (t: XmlNode) => children(t, 'ANNOTATION').some((a) => child(a, 'ALIGNABLE_ANNOTATION'));
  const picked = tier === undefined ? tiers.find(aligned) : tiers.find((t) => attr(t, 'TIER_ID') === tier);
  if (!picked) {
    throw bad(
      tier === undefined
        ? `no tier with time-aligned annotations (tiers: ${names.join(', ') || 'none'})`
        : `no tier "${tier}" (tiers: ${names.join(', ') || 'none'})`,
    );
  }
  const tierId = attr(picked, 'TIER_ID') ?? '';
  const intervals: EafInterval[] = [];
  for (const a of children(picked, 'ANNOTATION')) {
    const al = child(a, 'ALIGNABLE_ANNOTATION');
    if (!al) throw bad(`tier "${tierId}" has reference annotations (a dependent tier): pick a time-aligned tier with --tier`);
    const id = attr(al, 'ANNOTATION_ID') ?? '?';
    const t1 = slots.get(attr(al, 'TIME_SLOT_REF1') ?? '');
    const t2 = slots.get(attr(al, 'TIME_SLOT_REF2') ?? '');
    if (t1 === undefined || t2 === undefined || !Number.isFinite(t1) || !Number.isFinite(t2)) {
      throw bad(`annotation ${id} on tier "${tierId}" has a time slot without a time value (unaligned)`);
    }
    const label = (text(al, 'ANNOTATION_VALUE') ?? '').trim();
    if (label === '') continue; // an empty annotation marks nothing
    if (t2 <= t1) throw bad(`annotation ${id} on tier "${tierId}" ends (${t2} ms) before it starts (${t1} ms)`);
    intervals.push({ label, startMs: t1 + origin, endMs: t2 + origin, where: `annotation ${id} on tier "${tierId}" (${t1}-${t2} ms)` });
  }
  return { media, tiers: names, tier: tierId, intervals };
}
