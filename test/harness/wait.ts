// Waiting on real components by event, not by time: `until` returns as soon as the condition holds, so a loaded
// machine only makes a test slower, never red. The limit is a backstop whose error names what never happened;
// keep it far above any plausible delay (the test's own timeout is the other backstop).
export async function until(what: string, done: () => boolean | Promise<boolean>, { limitMs = 30_000, pollMs = 5 } = {}): Promise<void> {
  const end = performance.now() + limitMs;
  while (!(await done())) {
    if (performance.now() > end) throw new Error(`gave up after ${limitMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
