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
  /** the images the channel pointed at before its current one, newest first, without the current one */
  previous?(name: string, channel: string): Promise<ResolvedImage[]>;
}

/** A catalog with nothing in it. */
export const EmptyCatalog: ImageCatalog = { resolve: async () => null };

/** What the boot route may boot from a channel (issue 12 item 7): the current image, or the last good one. */
export type RenderableImage =
  /** nothing is published on the channel */
  | { kind: 'none' }
  | { kind: 'current'; image: ResolvedImage }
  /** the current image does not render; an earlier image of the channel does */
  | { kind: 'fallback'; image: ResolvedImage; broken: ResolvedImage; error: string }
  /** neither the current image nor any earlier one renders */
  | { kind: 'broken'; broken: ResolvedImage; error: string };

/**
 * The image of `name:channel` that `render` accepts (it throws for one it cannot put into a script). Push refuses
 * what does not render, but an image registered before that check, or a renderer that grows stricter, must not
 * turn every boot of the fleet into an error and a retry loop: the node gets the newest earlier image of the
 * channel that renders, and the caller records that it did.
 */
export async function renderableImage(catalog: ImageCatalog, name: string, channel: string, render: (image: ResolvedImage) => unknown): Promise<RenderableImage> {
  const current = await catalog.resolve(name, channel);
  if (!current) return { kind: 'none' };
  const tryRender = (image: ResolvedImage): string | null => {
    try {
      render(image);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  };
  const error = tryRender(current);
  if (error === null) return { kind: 'current', image: current };
  for (const image of (await catalog.previous?.(name, channel)) ?? []) if (tryRender(image) === null) return { kind: 'fallback', image, broken: current, error };
  return { kind: 'broken', broken: current, error };
}
