// What each annotation-tool reader yields: a video and one label per source frame.
export interface AnnotatedVideo {
  /** The video's file name without extension (as in the per-frame layout). */
  name: string;
  path: string;
  /** One label per source frame, `background` where no interval covers it. */
  labels: string[];
}

/** Annotation files of one kind in a dataset root, relative to it. */
export interface AnnotationFiles {
  root: string;
  files: string[];
}
