CREATE TABLE "fleet_control" (
	"id" text PRIMARY KEY NOT NULL,
	"last_tick_at" timestamp with time zone,
	"leader_id" text,
	"leader_since" timestamp with time zone,
	"observed_since" timestamp with time zone,
	"breaker_open" boolean DEFAULT false NOT NULL,
	"breaker_opened_at" timestamp with time zone,
	"breaker_reason" text,
	"breaker_data" jsonb,
	"breaker_resumed_at" timestamp with time zone,
	"breaker_resumed_by" text
);
--> statement-breakpoint
CREATE TABLE "fleet_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"kind" text NOT NULL,
	"reason" text NOT NULL,
	"actor" text NOT NULL,
	"data" jsonb
);
--> statement-breakpoint
ALTER TABLE "fleet_rebuilds" ADD COLUMN "step" text DEFAULT 'reprovision' NOT NULL;--> statement-breakpoint
CREATE INDEX "fleet_events_at_idx" ON "fleet_events" USING btree ("at");