// /ui/images: every image with what each channel carries, promote (one channel to the next, through the
// promotion gates) and roll back (a channel to its previous image), and the recent channel history.
import { CsrfField, documentOf, Flash, Page, type Viewer } from './layout.tsx';

export interface ImageSummary {
  name: string;
  versions: number;
  latest: string | null;
  /** channel → version */
  channels: Record<string, string>;
  history: { id: number; channel: string; action: string; from: { version: string | null } | null; to: { version: string | null }; actor: string; reason: string | null; at: string }[];
}

export interface ImagesView {
  viewer: Viewer | null;
  /** null: this server has no image pipeline */
  images: ImageSummary[] | null;
  channels: string[];
  csrf: string | null;
  canOperate: boolean;
  flash?: { ok?: string | null; error?: string | null };
}

function ImageSection({ img, channels, csrf, canOperate }: { img: ImageSummary; channels: string[]; csrf: string | null; canOperate: boolean }) {
  const forms = canOperate && csrf;
  return (
    <section class="image" data-image={img.name}>
      <h2>{img.name} <span class="muted">{`${img.versions} version(s), latest ${img.latest ?? '—'}`}</span></h2>
      <table class="channels">
        <thead>
          <tr><th>Channel</th><th>Version</th>{forms && <th>Actions</th>}</tr>
        </thead>
        <tbody>
          {channels.map((ch, i) => {
            const next = channels[i + 1];
            const here = img.channels[ch];
            return (
              <tr data-channel={ch}>
                <td>{ch}</td>
                <td class="mono version">{here ?? '—'}</td>
                {forms && (
                  <td>
                    {here && next && (
                      <form class="inline promote" method="post" action={`/ui/images/${img.name}/promote`}>
                        <CsrfField token={csrf} />
                        <input type="hidden" name="from" value={ch} />
                        <input type="hidden" name="to" value={next} />
                        <button type="submit">{`Promote ${ch} → ${next}`}</button>
                      </form>
                    )}{' '}
                    {here && (
                      <form class="inline rollback" method="post" action={`/ui/images/${img.name}/rollback`}>
                        <CsrfField token={csrf} />
                        <input type="hidden" name="channel" value={ch} />
                        <button type="submit">{`Roll back ${ch}`}</button>
                      </form>
                    )}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
      <h3>Recent channel history</h3>
      <table class="history">
        <thead>
          <tr><th>When</th><th>Channel</th><th>Action</th><th>From → to</th><th>Who</th><th>Why</th></tr>
        </thead>
        <tbody>
          {img.history.map((h) => (
            <tr data-action={h.action}>
              <td class="mono">{h.at.replace('T', ' ').slice(0, 19)}</td>
              <td>{h.channel}</td>
              <td>{h.action}</td>
              <td class="mono">{`${h.from?.version ?? '∅'} → ${h.to.version ?? '?'}`}</td>
              <td>{h.actor}</td>
              <td>{h.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function ImagesPage({ viewer, images, channels, csrf, canOperate, flash }: ImagesView) {
  return (
    <Page title="Images" viewer={viewer}>
      <Flash ok={flash?.ok} error={flash?.error} />
      {images === null ? (
        <p class="muted">This server has no image pipeline configured.</p>
      ) : images.length === 0 ? (
        <p class="muted" id="no-images">No images yet: <code>bootfarm image push</code>.</p>
      ) : (
        <>
          {!canOperate && <p class="muted">Promote and roll back need the operator role.</p>}
          {images.map((img) => <ImageSection img={img} channels={channels} csrf={csrf} canOperate={canOperate} />)}
        </>
      )}
    </Page>
  );
}

export const renderImagesPage = (v: ImagesView) => documentOf(<ImagesPage {...v} />);
