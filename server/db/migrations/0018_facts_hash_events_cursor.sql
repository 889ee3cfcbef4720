ALTER TABLE "facts" ADD COLUMN "hash" text;--> statement-breakpoint
CREATE INDEX "events_node_at_idx" ON "events" USING btree ("node_uuid","at","id");