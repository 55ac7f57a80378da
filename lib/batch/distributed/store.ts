// Where the workers of a distributed run put each chunk's output, and where the producer merges them from. The
// default is a directory on a filesystem that every machine mounts (NFS, CephFS, a cloud file share); another store
// (an object store, say) implements the same five calls.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../io/files';
import { rnnkitError } from '../../errors';

/** The chunk outputs of one run. put() must be atomic: a reader sees a chunk whole or not at all. */
export interface ChunkStore {
  /** Where it is, for messages. */
  readonly location: string;
  /** Make the store ready for chunks; the producer calls it before it queues any. */
  prepare(): Promise<void>;
  /**
   * Store chunk `index` (replacing an earlier copy: every copy of a chunk holds the same bytes). Fails when the store
   * is not there (prepare() never ran here, or remove() ran): a late copy of a chunk must not bring a finished run's
   * store back.
   */
  put(index: number, data: Buffer): Promise<void>;
  /** The indexes of the chunks stored. */
  list(): Promise<Set<number>>;
  get(index: number): Promise<Buffer>;
  /** Remove the run's chunks (after the merge). */
  remove(): Promise<void>;
}

/** How a run records its store, so that every worker opens the same one. */
export interface StoreSpec {
  type: 'directory';
  path: string;
}

const chunkName = (index: number): string => `chunk-${String(index).padStart(8, '0')}.part`;
const chunkPattern = /^chunk-(\d{8,})\.part$/;

/** A directory of chunk files. */
export class DirectoryStore implements ChunkStore {
  constructor(readonly location: string) {}

  async prepare(): Promise<void> {
    await fs.promises.mkdir(this.location, { recursive: true });
  }

  async put(index: number, data: Buffer): Promise<void> {
    // No mkdir here: the directory exists from prepare() until the producer's merge removes it; a worker that finds it
    // missing is storing a chunk of a run that has ended, or does not mount the shared directory.
    if (!fs.existsSync(this.location))
      throw rnnkitError('ERR_RNNKIT_FILE', `the chunk store ${this.location} does not exist here (the run has ended, or this machine does not mount its directory)`);
    // A private name, fsync, rename over the chunk, fsync of the directory: whole or absent, even after a crash.
    await writeFileAtomic(path.join(this.location, chunkName(index)), data);
  }

  async list(): Promise<Set<number>> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.location);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw e;
    }
    const out = new Set<number>();
    for (const n of names) {
      const m = chunkPattern.exec(n);
      if (m) out.add(Number(m[1]));
    }
    return out;
  }

  get(index: number): Promise<Buffer> {
    return fs.promises.readFile(path.join(this.location, chunkName(index)));
  }

  async remove(): Promise<void> {
    await fs.promises.rm(this.location, { recursive: true, force: true });
  }
}

/** The store a run's record names. */
export function openStore(spec: StoreSpec): ChunkStore {
  if (spec.type === 'directory') return new DirectoryStore(spec.path);
  throw new Error(`unknown chunk store type '${(spec as { type: unknown }).type}'`);
}
