// How the control plane asks for a bootable image. Profiles reference an image name and a channel, never a raw
// digest; the catalog resolves the channel to what it points at now. server/images implements it.

export interface ResolvedBlob {
  digest: string;
  size?: number;
}

export interface ResolvedImage {
  name: string;
  version: string;
  channel: string;
  /** identifies the manifest (name+version+digests) */
  manifestDigest?: string;
  kernel: ResolvedBlob;
  initrd: ResolvedBlob;
  /** the image's default kernel command line */
  cmdline: string;
}

export interface ImageCatalog {
  /** null when the channel has nothing published (an outcome: the caller says so to the node) */
  resolve(name: string, channel: string): Promise<ResolvedImage | null>;
}

/** A catalog with nothing in it. */
export const EmptyCatalog: ImageCatalog = { resolve: async () => null };
