// Lines of a JSON-lines file with their byte offsets, and the cut of a file into chunks of lines: the one owner of
// how `rnnkit predict` numbers lines and groups them, so that a chunk predicted on another machine (which reads only
// its byte range) holds exactly the lines, with the same numbers, that the single-machine runner would have put in it.
//
// Lines end at "\n", "\r\n" or a lone "\r" (as Node's readline splits them); line numbers start at 1 and count blank
// lines, which belong to no chunk.
import * as fs from 'node:fs';

export interface TextLine {
  /** 1-based line number. */
  line: number;
  text: string;
  /** Byte offset just after the line's terminator (where the next line starts). */
  end: number;
}

export interface LineRange {
  /** First byte to read (default 0): the start of a line. */
  start?: number;
  /** Byte offset to stop at (default: the end of the file): the end of a line. */
  end?: number;
  /** Number of the line at `start` (default 1). */
  firstLine?: number;
}

/** The lines of `file` (or of a byte range of it) with their numbers and end offsets. */
export async function* readLines(file: string, range: LineRange = {}): AsyncGenerator<TextLine> {
  const start = range.start ?? 0;
  if (range.end !== undefined && range.end <= start) return;
  let line = range.firstLine ?? 1;
  let base = start; // file offset of carry[0]
  let carry: Buffer = Buffer.alloc(0);
  let scanned = 0; // bytes of carry already searched for a terminator
  const stream = fs.createReadStream(file, { start, end: range.end !== undefined ? range.end - 1 : undefined, highWaterMark: 1 << 20 });
  for await (const piece of stream as AsyncIterable<Buffer>) {
    const buf = carry.length ? Buffer.concat([carry, piece]) : piece;
    let from = 0;
    let i = scanned;
    for (; i < buf.length; i++) {
      const c = buf[i];
      if (c !== 0x0a && c !== 0x0d) continue;
      let next = i + 1;
      if (c === 0x0d) {
        if (next === buf.length) break; // "\r" last: is it "\r\n"? The next piece says.
        if (buf[next] === 0x0a) next++;
      }
      yield { line: line++, text: buf.toString('utf8', from, i), end: base + next };
      from = next;
      i = next - 1;
    }
    carry = buf.subarray(from);
    scanned = i - from;
    base += from;
  }
  if (carry.length > 0) {
    const textEnd = carry[carry.length - 1] === 0x0d ? carry.length - 1 : carry.length;
    yield { line: line++, text: carry.toString('utf8', 0, textEnd), end: base + carry.length };
  }
}

export interface ChunkLine {
  line: number;
  text: string;
}

export interface LineChunk {
  /** 0-based position of the chunk in the file. */
  index: number;
  /** The chunk's non-blank lines. */
  lines: ChunkLine[];
  /** Its byte range: from the end of the previous chunk to the end of its last line. */
  start: number;
  end: number;
  /** Number of the line at `start`. */
  firstLine: number;
}

/**
 * The file cut into chunks of `chunkLines` non-blank lines, in order. Lines numbered `after` or less are skipped
 * (a resumed run). `seen.lines` ends as the number of the file's last line (blank or not).
 */
export async function* readChunks(file: string, chunkLines: number, after = 0, seen: { lines: number } = { lines: 0 }): AsyncGenerator<LineChunk> {
  let chunk: LineChunk = { index: 0, lines: [], start: 0, end: 0, firstLine: 1 };
  let index = 0;
  let previousEnd = 0;
  for await (const l of readLines(file)) {
    seen.lines = l.line;
    if (l.line <= after || l.text.trim() === '') {
      if (chunk.lines.length === 0) {
        previousEnd = l.end;
        chunk.firstLine = l.line + 1;
      }
      continue;
    }
    if (chunk.lines.length === 0) chunk.start = previousEnd;
    chunk.lines.push({ line: l.line, text: l.text });
    chunk.end = l.end;
    if (chunk.lines.length === chunkLines) {
      yield chunk;
      previousEnd = chunk.end;
      chunk = { index: ++index, lines: [], start: previousEnd, end: previousEnd, firstLine: l.line + 1 };
    }
  }
  if (chunk.lines.length > 0) yield chunk;
}
