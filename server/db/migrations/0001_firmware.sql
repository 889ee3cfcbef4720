CREATE TABLE "firmware_attempts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" text NOT NULL,
	"number" integer NOT NULL,
	"baseline_name" text NOT NULL,
	"baseline_version" integer NOT NULL,
	"steps" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"reported_at" timestamp with time zone,
	"results" jsonb,
	"ok" boolean,
	"outcome" text DEFAULT 'open' NOT NULL,
	"closed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "firmware_baseline_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"action" text NOT NULL,
	"spec" jsonb NOT NULL,
	"source" text,
	"changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "firmware_baselines" (
	"name" text PRIMARY KEY NOT NULL,
	"version" integer NOT NULL,
	"spec" jsonb NOT NULL,
	"source" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "firmware_attempts" ADD CONSTRAINT "firmware_attempts_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "firmware_attempts_node_idx" ON "firmware_attempts" USING btree ("node_uuid","id");--> statement-breakpoint
CREATE UNIQUE INDEX "firmware_baseline_history_uq" ON "firmware_baseline_history" USING btree ("name","version");