import { describe, expect, it } from 'vitest';
import { OTHER_SOURCES, createLogLimiter } from './limit.ts';
import { fakeClock } from '../../test/support/dhcp/fakes.ts';

describe('createLogLimiter', () => {
  it('one line per key per interval; the next line carries how many were held back', () => {
    const clock = fakeClock();
    const take = createLogLimiter({ clock: clock.now, intervalMs: 60_000 });
    expect(take('a')).toEqual({ suppressed: 0 });
    for (let i = 0; i < 9; i++) expect(take('a')).toBeNull();
    expect(take('b')).toEqual({ suppressed: 0 });
    clock.advance(59_999);
    expect(take('a')).toBeNull();
    clock.advance(1);
    expect(take('a')).toEqual({ suppressed: 10 });
    expect(take('a')).toBeNull();
  });

  it('a sender rotating its key on every packet cannot grow the table: beyond maxKeys the newcomers share one line', () => {
    const clock = fakeClock();
    const take = createLogLimiter({ clock: clock.now, intervalMs: 60_000, maxKeys: 4 });
    const lines = Array.from({ length: 1000 }, (_, i) => take(`mac-${i}`)).filter(Boolean);
    expect(lines).toHaveLength(5); // four keys + the shared one
    // an interval later, quiet keys without a pending count are forgotten and new ones get lines again
    clock.advance(60_000);
    expect(take('fresh')).toEqual({ suppressed: 0 });
    expect(take(OTHER_SOURCES)).toEqual({ suppressed: 995 });
  });
});
