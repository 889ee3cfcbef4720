// What the TFTP core reads from: any byte source with a known size (STYLE.md §3: the core takes
// `open(path)`, the edge supplies it). A file can come from disk, from the image store's S3 body
// stream, or from memory — the transfer only ever reads forward, so a stream is enough.
import { Readable } from 'node:stream';

export type OpenedFile =
  | { size: number; stream: Readable; read?: undefined }
  | { size: number; read: (offset: number, length: number) => Promise<Buffer>; stream?: undefined };

/** Who asked: the TFTP client's address and port, for a source whose answer depends on the machine (the GRUB
 * per-node configs, server/grub-tftp.ts); a plain file source ignores it. */
export interface TftpClient {
  address: string;
  port: number;
}

/** Resolve a normalised relative path (see normalisePath) to a byte source; null = not found. */
export type OpenFn = (path: string, client?: TftpClient) => Promise<OpenedFile | null>;

/**
 * Reads a source sequentially into caller-owned buffers. `readInto` answers synchronously when
 * enough bytes are already buffered (the common case with read-ahead), so a hot transfer does not
 * pay a promise per block; it never yields more than `size` bytes in total, keeping the data
 * consistent with the tsize we announced (RFC 2349).
 */
export interface SequentialReader {
  readInto(target: Buffer, offset: number, length: number): number | Promise<number>;
  close(): void;
}

/** Bytes of read-ahead per transfer before the stream is paused. */
const HIGH_WATER = 256 * 1024;
/** Chunk size when adapting a random-access `read(offset, len)` source. */
const READ_CHUNK = 128 * 1024;

export function createReader(file: OpenedFile): SequentialReader {
  const stream = file.stream ?? randomAccessStream(file.size, file.read);
  return new StreamReader(stream, file.size);
}

function randomAccessStream(size: number, read: (offset: number, length: number) => Promise<Buffer>): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let offset = 0; offset < size; ) {
      const buf = await read(offset, Math.min(READ_CHUNK, size - offset));
      if (buf.length === 0) return; // source shorter than announced: end early
      offset += buf.length;
      yield buf;
    }
  }
  // One chunk of read-ahead is enough: each chunk holds ~90 blocks at blksize 1468.
  return Readable.from(chunks(), { objectMode: true, highWaterMark: 1 });
}

class StreamReader implements SequentialReader {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  private buffered = 0;
  private remaining: number; // bytes we may still hand out (announced size minus consumed)
  private ended = false;
  private error: Error | null = null;
  private waiter: (() => void) | null = null;

  constructor(private readonly stream: Readable, size: number) {
    this.remaining = size;
    stream.on('data', (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (buf.length === 0) return;
      this.chunks.push(buf);
      this.buffered += buf.length;
      if (this.buffered >= HIGH_WATER) stream.pause();
      this.wake();
    });
    stream.on('end', () => {
      this.ended = true;
      this.wake();
    });
    stream.on('error', (err: Error) => {
      this.error = err;
      this.wake();
    });
    stream.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  readInto(target: Buffer, offset: number, length: number): number | Promise<number> {
    const want = Math.min(length, this.remaining);
    if (this.error) return Promise.reject(this.error);
    if (this.buffered >= want || this.ended) return this.copy(target, offset, want);
    return new Promise<number>((resolve, reject) => {
      const retry = (): void => {
        if (this.error) return reject(this.error);
        if (this.buffered >= want || this.ended) return resolve(this.copy(target, offset, want));
        this.waiter = retry;
        if (this.stream.isPaused()) this.stream.resume();
      };
      retry();
    });
  }

  private copy(target: Buffer, offset: number, want: number): number {
    let done = 0;
    while (done < want && this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      const n = Math.min(want - done, chunk.length - this.head);
      chunk.copy(target, offset + done, this.head, this.head + n);
      done += n;
      this.head += n;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.buffered -= done;
    this.remaining -= done;
    if (this.buffered < HIGH_WATER / 2 && this.stream.isPaused() && !this.ended) this.stream.resume();
    return done;
  }

  close(): void {
    this.chunks = [];
    this.buffered = 0;
    this.stream.destroy();
  }
}
