// Request bodies shared by a JSON API route and the dashboard form that does the same thing (server/api/ui.ts):
// kept apart from the route files so the dashboard can use them without importing the routes.
import { z } from 'zod';

export const PowerRequest = z.strictObject({
  action: z.enum(['on', 'off', 'cycle', 'reset', 'soft']),
  /** set the next boot device first (pxe starts the boot flow) */
  bootdev: z.enum(['pxe', 'disk']).optional(),
});

export const PromoteBody = z.strictObject({
  from: z.string().min(1).max(32),
  to: z.string().min(1).max(32),
  reason: z.string().min(1).max(1024).optional(),
  /** skip failed gates (admin role only); recorded in history */
  force: z.boolean().optional(),
});

export const RollbackBody = z.strictObject({ channel: z.string().min(1).max(32), reason: z.string().min(1).max(1024).optional() });
